import type { FormRefusal } from '@s3-gallery/s3-store';
import { formatBytes } from '../format.js';
import { Layout } from './layout.js';

/** Pages a refused upload may go back to: the upload page, or an image's replace page. */
const UPLOAD_PAGE = /^\/(upload|images\/[a-z0-9]{1,64}\/replace)$/;

/** Why the bucket refused a plain form's upload, in the app's words (S3 would answer XML). */
function refusalReason(refusal: FormRefusal, maxUploadBytes: number): string {
  switch (refusal.code) {
    case 'EntityTooLarge': {
      const max = refusal.maxSizeAllowed ?? maxUploadBytes;
      // The page's form allows the smaller of the upload limit and what was left of the quota.
      return max < maxUploadBytes
        ? `That file is larger than what was left of your storage quota when the page was opened (${formatBytes(max)}). Delete some images, or ask an admin for more room.`
        : `That file is larger than the upload limit of ${formatBytes(maxUploadBytes)}.`;
    }
    case 'EntityTooSmall':
    case 'IncorrectNumberOfFilesInPostRequest':
      return 'No file arrived: choose a file, then press Upload.';
    case 'AccessDenied':
      if (/expired/i.test(refusal.message))
        return 'This upload page expired (its upload link lasts 15 minutes). Go back, reload the page and choose the file again.';
      if (isFormUsed(refusal))
        return 'This upload page has sent a file already. Open the upload page again to send another.';
      return 'The upload link of this page does not allow that file. Go back, reload the page and try again.';
    case 'KeyTooLongError':
      return "That file's name is too long to keep. Rename the file to something shorter and upload it again.";
    case 'InvalidArgument':
      return /key/i.test(refusal.message)
        ? "That file's name has characters the storage cannot keep. Rename the file and upload it again."
        : `The upload was refused (${refusal.code}). Go back, reload the page and try again.`;
    default:
      return `The upload was refused (${refusal.code}). Go back, reload the page and try again.`;
  }
}

/** The upload page the refused form was on, when the browser said so and it is one of ours. */
function backTo(refusal: FormRefusal, appOrigin: string): string {
  try {
    const url = new URL(refusal.referer ?? '', appOrigin);
    if (url.origin === appOrigin && UPLOAD_PAGE.test(url.pathname)) return url.pathname;
  } catch {
    // no usable Referer: the upload page
  }
  return '/upload';
}

/** The store keeps one file per page form: the way back asks for a form of the visit's own. */
const isFormUsed = (refusal: FormRefusal) =>
  refusal.code === 'AccessDenied' && /already stored/i.test(refusal.message);

function UploadRefusalPage(props: { refusal: FormRefusal; maxUploadBytes: number; appOrigin: string }) {
  const back = `${backTo(props.refusal, props.appOrigin)}${isFormUsed(props.refusal) ? '?new=1' : ''}`;
  return (
    <Layout title="Upload refused" user={null} bare>
      <section class="card narrow">
        <h1>Upload refused</h1>
        <p class="error" role="alert">
          {refusalReason(props.refusal, props.maxUploadBytes)}
        </p>
        <p class="row">
          <a class="button" href={back}>
            Back to the upload page
          </a>
          <a class="button secondary" href="/">
            Your gallery
          </a>
        </p>
      </section>
    </Layout>
  );
}

/** The whole page as the embedded store answers it (see S3ServerOptions.formRefusalPage). */
export function uploadRefusalHtml(
  refusal: FormRefusal,
  config: { maxUploadBytes: number; appOrigin: string },
): string {
  return `<!DOCTYPE html>${(
    (
      <UploadRefusalPage
        refusal={refusal}
        maxUploadBytes={config.maxUploadBytes}
        appOrigin={config.appOrigin}
      />
    )
  ).toString()}`;
}
