import { countOf, formatBytes, formatCameraTime, formatDateTime, formatExposure } from '../format.js';
import { ACCEPTED_TYPES, fileTypeLabel, isImageType } from '../image-types.js';
import { TITLE_MAX } from '../limits.js';
import { can } from '../policy.js';
import { parseCameraDetails } from '../services/exif.js';
import type { Image, Neighbours } from '../services/images.js';
import type { User } from '../services/users.js';
import { FileCard } from './components/file-card.js';
import { PageHeading } from './components/page-heading.js';
import { PendingImage } from './components/pending-image.js';
import { PostButton } from './components/post-button.js';
import { galleryHref, type ImageContext, imageHref } from './gallery.js';
import { Layout } from './layout.js';
import { type LinkRowData, LinksTable, NewLinkNotice, ShareForm } from './shares.js';

export interface ImagePageProps {
  user: User;
  image: Image;
  /** null until the image is ready */
  displayUrl: string | null;
  notice?: string | undefined;
  error?: string | undefined;
  /** the owner's links to this image; only for those who may change it */
  links?: LinkRowData[];
  newShareUrl?: string | undefined;
  /** the images before and after it in the grid it was opened from (`context`) */
  neighbours?: Neighbours | undefined;
  context?: ImageContext | undefined;
  /** when an image in the trash is deleted for good (TRASH_DAYS after it went there) */
  purgeAt?: number | undefined;
  /** the label of the guest link the image came through (null: the link is gone) */
  guestLabel?: string | null | undefined;
}

/** Previous and next in the grid's order (newest first), so the pages can be browsed without scripts. */
function ImageNav({ neighbours, context }: { neighbours: Neighbours; context: ImageContext }) {
  if (!neighbours.previous && !neighbours.next) return null;
  return (
    <nav class="image-nav" aria-label="Browse images">
      {neighbours.previous ? (
        <a href={imageHref(neighbours.previous, context)} rel="prev" class="button secondary">
          ← Previous<span class="visually-hidden"> image</span>
        </a>
      ) : (
        <span />
      )}
      {neighbours.next ? (
        <a href={imageHref(neighbours.next, context)} rel="next" class="button secondary">
          Next<span class="visually-hidden"> image</span> →
        </a>
      ) : null}
    </nav>
  );
}

/** The grid the page was opened from: the album, or the gallery in its order. */
function backTo(user: User, image: Image, context: ImageContext): { href: string; label: string } {
  if (context.album) return { href: `/albums/${context.album}`, label: 'Back to the album' };
  const gallery =
    image.ownerId === user.id ? '/' : can(user, 'admin') ? `/users/${image.ownerId}` : '/shared';
  return { href: galleryHref(gallery, { order: context.order, search: '' }), label: 'Back to the gallery' };
}

export function ImagePage({
  user,
  image,
  displayUrl,
  notice,
  error,
  links,
  newShareUrl,
  neighbours,
  context = { order: 'uploaded' },
  purgeAt,
  guestLabel,
}: ImagePageProps) {
  // Any other file (ACCEPT=any) has no copies: its type and size, and a download.
  const file = isImageType(image.contentType)
    ? null
    : { label: fileTypeLabel(image.contentType, image.originalName), bytes: image.bytes };
  // In the trash, an image is only restored or deleted for good (only its owner and admins see it).
  const isTrashed = image.trashedAt !== null;
  const canChange = can(user, 'image.change', image) && !isTrashed;
  const isProcessing = image.state === 'processing';
  // While it is processed, the page fetches itself every two seconds and swaps this part in
  // (htmx); without JavaScript, the whole page reloads.
  const poll = isProcessing
    ? {
        'hx-get': imageHref(image.id, context),
        'hx-trigger': 'load delay:2s',
        'hx-select': '#image-main',
        'hx-target': 'this',
        'hx-swap': 'outerHTML',
      }
    : {};
  return (
    <Layout title={image.title} user={user} {...(isProcessing ? { refreshWithoutScript: 3 } : {})}>
      <PageHeading back={backTo(user, image, context)} title={image.title} notice={notice} error={error} />
      <NewLinkNotice url={newShareUrl} />
      {isTrashed ? (
        <section class="card trash-banner" aria-labelledby="trash-heading">
          <h2 id="trash-heading">This image is in the trash</h2>
          <p>
            Galleries, albums and share links leave it out
            {purgeAt ? `; it is deleted for good on ${formatDateTime(purgeAt)}` : ''}. Restore it to bring it
            back.
          </p>
          <div class="row">
            <PostButton action={`/images/${image.id}/restore`} label="Restore" />
            <PostButton action="/trash/delete" label="Delete forever" danger fields={{ ids: image.id }} />
          </div>
        </section>
      ) : null}
      {neighbours && !isTrashed ? <ImageNav neighbours={neighbours} context={context} /> : null}
      <div class="image-page" id="image-main" {...poll}>
        <figure class="display">
          {file && image.state !== 'failed' ? (
            <FileCard title={image.title} file={file} size="display" />
          ) : displayUrl ? (
            <img
              src={displayUrl}
              alt={image.title}
              width={image.width}
              height={image.height}
              data-thumbhash={image.placeholder ?? undefined}
            />
          ) : (
            <PendingImage image={image} size="display" />
          )}
          {image.state === 'processing' ? (
            <figcaption class="muted" role="status">
              {file
                ? 'The file is being stored. This page updates when it is ready.'
                : 'The thumbnail and display copy are being made. This page updates when they are ready.'}
            </figcaption>
          ) : null}
          {image.state === 'failed' ? (
            <figcaption role="alert">
              <p class="error">{image.failure ?? 'This image could not be processed.'}</p>
              <p>
                The original file is kept: you can download it{canChange ? ', try again, or replace it' : ''}.
              </p>
              {canChange ? (
                <PostButton action={imageHref(image.id, context, '/retry')} label="Try again" />
              ) : null}
            </figcaption>
          ) : null}
        </figure>
        <aside class="card details">
          <dl>
            <dt>Original name</dt>
            <dd>{image.originalName || '—'}</dd>
            <dt>Type</dt>
            <dd>
              {file
                ? `${file.label} file`
                : (ACCEPTED_TYPES.get(image.contentType)?.name ?? image.contentType)}
            </dd>
            <dt>Size</dt>
            <dd>{formatBytes(image.bytes)}</dd>
            {file ? null : (
              <>
                <dt>Dimensions</dt>
                <dd>{image.state === 'ready' ? `${image.width} × ${image.height}` : '—'}</dd>
                <dt>Taken</dt>
                <dd>
                  {image.takenAt
                    ? formatCameraTime(image.takenAt)
                    : image.state === 'ready'
                      ? 'unknown'
                      : '—'}
                </dd>
                <CameraDetailsRows json={image.exif} />
              </>
            )}
            <dt>Uploaded</dt>
            <dd>{formatDateTime(image.createdAt)}</dd>
            {image.guest ? (
              <>
                <dt>From a guest</dt>
                <dd>
                  through the link “{guestLabel ?? 'deleted'}”
                  {image.guest.name ? `, sent by ${image.guest.name}` : ''}
                </dd>
              </>
            ) : null}
            {image.updatedAt !== image.createdAt ? (
              <>
                <dt>Changed</dt>
                <dd>{formatDateTime(image.updatedAt)}</dd>
              </>
            ) : null}
          </dl>
          <p>
            <a class="button" href={`/images/${image.id}/download`}>
              {file ? 'Download' : 'Download original'}
            </a>
          </p>
          {canChange ? (
            <>
              <form method="post" action={imageHref(image.id, context, '/rename')} class="stack">
                <label for="title">Title</label>
                <input id="title" name="title" value={image.title} required maxlength={TITLE_MAX} />
                <button type="submit">Rename</button>
              </form>
              <p class="row">
                <a class="button secondary" href={`/images/${image.id}/replace`}>
                  Replace file
                </a>
                <a class="button danger" href={`/images/${image.id}/delete`}>
                  Delete
                </a>
              </p>
              <form method="post" action={imageHref(image.id, context, '/visibility')} class="stack">
                <input type="hidden" name="shared" value={image.isShared ? '0' : '1'} />
                <p class="muted">
                  {image.isShared
                    ? 'Every signed-in user can see this image on the Shared page.'
                    : 'Only you and admins can see this image.'}
                </p>
                <button type="submit" class="secondary">
                  {image.isShared ? 'Make private' : 'Show to all signed-in users'}
                </button>
              </form>
            </>
          ) : null}
        </aside>
      </div>
      {canChange ? (
        <section class="card sharing" aria-labelledby="sharing-heading">
          <h2 id="sharing-heading">Share links</h2>
          <ShareForm action={imageHref(image.id, context, '/shares')} />
          <LinksTable rows={links ?? []} showImages={false} back={`/images/${image.id}?revoked=1`} />
        </section>
      ) : null}
    </Layout>
  );
}

/** What a delete does: the trash keeps what went there `days` days, restorable. */
const trashKeeps = (days: number, count: number) =>
  count === 1
    ? `It goes to the trash, where you can restore it for ${countOf(days, 'day')}.`
    : `They go to the trash, where you can restore them for ${countOf(days, 'day')}.`;

export function ConfirmDeletePage({
  user,
  image,
  trashDays,
}: {
  user: User;
  image: Image;
  trashDays: number;
}) {
  return (
    <Layout title={`Delete ${image.title}`} user={user}>
      <section class="card narrow">
        <h1>Delete “{image.title}”?</h1>
        <p>{trashKeeps(trashDays, 1)}</p>
        <form method="post" action={`/images/${image.id}/delete`} class="row">
          <button type="submit" class="danger">
            Move to trash
          </button>
          <a href={`/images/${image.id}`}>Cancel</a>
        </form>
      </section>
    </Layout>
  );
}

export function ConfirmBulkDeletePage({
  user,
  images,
  trashDays,
}: {
  user: User;
  images: Image[];
  trashDays: number;
}) {
  return (
    <Layout title="Delete images" user={user}>
      <section class="card narrow">
        <h1>Delete {countOf(images.length, 'image')}?</h1>
        <ul>
          {images.map((image) => (
            <li>{image.title}</li>
          ))}
        </ul>
        <p>{trashKeeps(trashDays, images.length)}</p>
        <form method="post" action="/images/delete" class="row">
          {images.map((image) => (
            <input type="hidden" name="ids" value={image.id} />
          ))}
          <input type="hidden" name="confirm" value="yes" />
          <button type="submit" class="danger">
            Move to trash
          </button>
          <a href="/">Cancel</a>
        </form>
      </section>
    </Layout>
  );
}

/** The camera's settings the file told (camera, lens, exposure, focal length, ISO): rows of the details list. */
function CameraDetailsRows({ json }: { json: string | null }) {
  const camera = parseCameraDetails(json);
  if (!camera) return null;
  const model = camera.model ?? '';
  // Most models already start with the make ("Canon EOS R5"); others do not ("NIKON" "Z 6").
  const name =
    camera.make && !model.toLowerCase().startsWith(camera.make.toLowerCase().split(' ')[0] ?? '')
      ? `${camera.make} ${model}`.trim()
      : model || camera.make;
  const exposure = [
    camera.exposureSeconds ? formatExposure(camera.exposureSeconds) : null,
    camera.fNumber ? `f/${Number(camera.fNumber.toFixed(1))}` : null,
  ].filter(Boolean);
  const rows: [string, string | undefined][] = [
    ['Camera', name],
    ['Lens', camera.lens],
    ['Exposure', exposure.length > 0 ? exposure.join(', ') : undefined],
    ['Focal length', camera.focalLengthMm ? `${Number(camera.focalLengthMm.toFixed(1))} mm` : undefined],
    ['ISO', camera.iso ? String(camera.iso) : undefined],
  ];
  return (
    <>
      {rows.map(([label, value]) =>
        value ? (
          <>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </>
        ) : null,
      )}
    </>
  );
}
