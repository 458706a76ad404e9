import { formatBytes } from '../format.js';
import { ACCEPT, ACCEPTED_NAMES } from '../image-types.js';
import type { Image } from '../services/images.js';
import { PART_BYTES } from '../services/upload-parts.js';
import type { PresignedUpload } from '../services/uploads.js';
import type { User } from '../services/users.js';
import { asset } from './assets.js';
import { ErrorMessage } from './components/messages.js';
import { type Usage, UsageMeter } from './components/usage-meter.js';
import { Layout } from './layout.js';

export interface UploadPageProps {
  user: User;
  /** ACCEPT: our image types only, or any file */
  accept: 'images' | 'any';
  /** the page's own upload; absent when none can be made now (`refusal` says why) */
  form?: PresignedUpload;
  refusal?: string;
  maxBytes: number;
  replacing?: Image;
  /** what the user stores against their quota (absent when replacing someone else's image) */
  usage?: Usage;
}

/**
 * What the account uses against its quota. upload.js sends `uploads-settled` once a round of
 * uploads has ended, and htmx fetches the meter again in its place (GET /upload/usage).
 */
export function UploadUsage({ user, usage }: { user: User; usage: Usage }) {
  return (
    <div id="upload-usage" hx-get="/upload/usage" hx-trigger="uploads-settled from:body" hx-swap="outerHTML">
      <UsageMeter
        usage={usage}
        quota={{ bytes: user.quotaBytes, images: user.quotaImages }}
        label="You use"
      />
    </div>
  );
}

/**
 * A plain form that posts straight to the bucket, so it works with JavaScript off (one file).
 * upload.js takes it over when it can: several files, drag and drop, a row per file with a
 * preview, progress, cancel and retry, and a summary (`#upload-summary`) that links to the gallery.
 */
export function UploadPage({ user, accept, form, refusal, maxBytes, replacing, usage }: UploadPageProps) {
  const heading = accept === 'any' ? 'Upload files' : 'Upload images';
  return (
    <Layout title={replacing ? `Replace ${replacing.title}` : heading} user={user}>
      <h1>{replacing ? `Replace “${replacing.title}”` : heading}</h1>
      {replacing ? (
        <p class="muted">
          The image keeps its title, address and share links; the old file is deleted once the new one is in.
        </p>
      ) : null}
      {usage ? <UploadUsage user={user} usage={usage} /> : null}
      {form ? (
        <UploadForm form={form} maxBytes={maxBytes} replacing={replacing} anyFile={accept === 'any'} />
      ) : null}
      {refusal ? (
        <>
          <ErrorMessage message={refusal} />
          <p>
            <a href="/">Back to your gallery</a>
          </p>
        </>
      ) : null}
    </Layout>
  );
}

/** The plain form that posts one file straight to the bucket, which upload.js takes over. */
export function UploadForm({
  form,
  maxBytes,
  replacing,
  anyFile,
  guest,
}: {
  form: PresignedUpload;
  maxBytes: number;
  replacing?: Image | undefined;
  anyFile: boolean;
  /** a guest link's page: upload.js signs and completes through the link, and sends no file in parts */
  guest?: { path: string } | undefined;
}) {
  return (
    <>
      <form
        id="upload-form"
        class="card upload"
        method="post"
        action={form.url}
        enctype="multipart/form-data"
        data-max-bytes={String(maxBytes)}
        data-part-bytes={guest ? undefined : String(PART_BYTES)}
        data-uploads={guest?.path}
        data-done-href={guest?.path}
        data-done-label={guest ? 'See what you sent' : undefined}
        data-type-names={ACCEPTED_NAMES}
        data-replaces={replacing?.id}
      >
        {Object.entries(form.fields).map(([name, value]) => (
          <input type="hidden" name={name} value={value} />
        ))}
        {/* Without JavaScript the real type is unknown here; completion sniffs the bytes anyway. */}
        <input
          type="hidden"
          name="Content-Type"
          value={anyFile ? 'application/octet-stream' : 'image/unknown'}
        />
        <label for="file">
          {replacing ? 'Choose the new file' : anyFile ? 'Choose a file' : 'Choose an image'}
        </label>
        <div class="dropzone" id="dropzone">
          <input
            id="file"
            type="file"
            name="file"
            accept={anyFile ? undefined : ACCEPT}
            required
            aria-describedby="upload-hint"
          />
          <p class="drop-hint" hidden>
            {anyFile ? '…or drop files here' : '…or drop images here'}
          </p>
        </div>
        <small id="upload-hint">
          {anyFile ? `Images (${ACCEPTED_NAMES}) or any other file` : ACCEPTED_NAMES}, up to{' '}
          {formatBytes(maxBytes)} each. This form works for 15 minutes: reload the page for a fresh one.
        </small>
        <button type="submit">Upload</button>
      </form>
      <p id="upload-summary" class="upload-summary" role="status" />
      <ul id="upload-list" class="upload-list" />
      <script type="module" src={asset('js/upload.js')} />
    </>
  );
}
