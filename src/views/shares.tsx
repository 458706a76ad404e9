import { countOf, formatDateTime } from '../format.js';
import { PASSWORD_MAX } from '../limits.js';
import type { Image } from '../services/images.js';
import { SHARE_EXPIRIES, type SharedView, type ShareLink, type ShareState } from '../services/shares.js';
import { displaySize } from '../services/thumbnails.js';
import type { User } from '../services/users.js';
import { asset } from './assets.js';
import { LinkPasswordField } from './components/fields.js';
import { FileCard } from './components/file-card.js';
import { LoadMoreLink } from './components/load-more.js';
import { ErrorMessage, Notice } from './components/messages.js';
import { PendingImage } from './components/pending-image.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';

export interface LinkRowData {
  link: ShareLink;
  state: ShareState;
}

/**
 * Shown once, at the top of the page the owner lands on after making a link (the token is only
 * stored hashed). The address is in a read-only field, selectable without JavaScript; copy.js adds
 * a Copy button.
 */
export function NewLinkNotice({ url, what = 'share link' }: { url?: string | undefined; what?: string }) {
  if (!url) return null;
  return (
    <div class="notice new-link" role="status">
      <p>
        <strong>Your new {what}</strong> — copy it now; it will not be shown again.
      </p>
      <div class="copy-row">
        <label for="new-share-link" class="visually-hidden">
          New {what}
        </label>
        <input id="new-share-link" class="copy" readonly value={url} />
        <button type="button" class="secondary" data-copy="new-share-link" hidden>
          Copy
        </button>
      </div>
      <script type="module" src={asset('js/copy.js')} />
    </div>
  );
}

/** Expiry, password and download options; posts to `action` with any hidden image ids. */
export function ShareForm({ action, imageIds = [] }: { action: string; imageIds?: string[] }) {
  return (
    <form method="post" action={action} class="stack share-form">
      {imageIds.map((id) => (
        <input type="hidden" name="ids" value={id} />
      ))}
      <label for="share-expiry">Link expires after</label>
      <select id="share-expiry" name="expiry">
        {Object.entries(SHARE_EXPIRIES).map(([value, { label }]) => (
          <option value={value} selected={value === '7d'}>
            {label}
          </option>
        ))}
      </select>
      <LinkPasswordField id="share-password" />
      <fieldset class="share-downloads">
        <legend>Visitors can download</legend>
        <label class="check">
          <input type="radio" name="download" value="none" checked /> Nothing: they can only look
        </label>
        <label class="check">
          <input type="radio" name="download" value="copy" /> A full-size copy, without location or camera
          data
        </label>
        <label class="check">
          <input type="radio" name="download" value="original" /> The original file, with its camera data and
          location
        </label>
      </fieldset>
      <button type="submit">Create share link</button>
    </form>
  );
}

function stateText({ link, state }: LinkRowData): string {
  if (state === 'revoked') return 'revoked';
  if (state === 'expired') return 'expired';
  return link.expiresAt === null ? 'active, never expires' : `active until ${formatDateTime(link.expiresAt)}`;
}

export function LinksTable({
  rows,
  showImages,
  back = '/shares',
}: {
  rows: LinkRowData[];
  showImages: boolean;
  /** where revoking returns to */
  back?: string;
}) {
  if (rows.length === 0)
    return (
      <p class="muted">
        No share links yet.
        {showImages
          ? ' To make one, tick images in your gallery and press Share selected, or share an album from its page.'
          : null}
      </p>
    );
  return (
    <TableScroll label="Share links">
      <table>
        <caption class="visually-hidden">Share links</caption>
        <TableHead
          columns={[...(showImages ? ['Images'] : []), 'Created', 'State', 'Views', 'Options']}
          actions
        />
        <tbody>
          {rows.map((row) => (
            <tr>
              {showImages ? (
                <td>
                  {row.link.albumName !== null ? (
                    <>
                      Album <a href={`/albums/${row.link.albumId}`}>{row.link.albumName}</a> (
                      {countOf(row.link.imageCount, 'image')})
                    </>
                  ) : (
                    <>
                      {row.link.firstTitle ?? 'deleted images'}
                      {row.link.imageCount > 1 ? ` and ${row.link.imageCount - 1} more` : ''}
                    </>
                  )}
                </td>
              ) : null}
              <td>{formatDateTime(row.link.createdAt)}</td>
              <td>{stateText(row)}</td>
              <td>{row.link.viewCount}</td>
              <td>
                {[
                  row.link.hasPassword ? 'password' : null,
                  row.link.allowDownload
                    ? row.link.downloadOriginal
                      ? 'download of the original'
                      : 'download of a copy without location'
                    : null,
                ]
                  .filter(Boolean)
                  .join(', ') || '—'}
              </td>
              <td class="actions">
                {row.state === 'active' ? (
                  <PostButton
                    action={`/shares/${row.link.id}/revoke`}
                    label="Revoke"
                    danger
                    fields={{ back }}
                  />
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

export function SharesPage({
  user,
  rows,
  newUrl,
  notice,
}: {
  user: User;
  rows: LinkRowData[];
  newUrl?: string | undefined;
  notice?: string | undefined;
}) {
  return (
    <Layout title="Share links" user={user}>
      <h1>Share links</h1>
      <p class="muted">
        Anyone with a link sees the images it names, without an account. Revoke a link to turn it off.
      </p>
      <p>
        To collect photos from people without an account, make a <a href="/guest-links">guest upload link</a>.
      </p>
      <NewLinkNotice url={newUrl} />
      <Notice message={notice} />
      <LinksTable rows={rows} showImages />
    </Layout>
  );
}

/** The options page for sharing a selection from the gallery: which images, then the link's options. */
export function ShareSelectionPage(props: { user: User; images: Image[]; error?: string | undefined }) {
  const ids = props.images.map((i) => i.id);
  return (
    <Layout title="Share images" user={props.user}>
      <section class="card narrow">
        <h1>Share {countOf(ids.length, 'image')}</h1>
        <ul>
          {props.images.map((image) => (
            <li>{image.title}</li>
          ))}
        </ul>
        <ErrorMessage message={props.error} />
        <ShareForm action="/shares" imageIds={ids} />
        <p>
          <a href="/">Cancel</a>
        </p>
      </section>
    </Layout>
  );
}

/** The display copy's size, which the viewer needs before it loads the picture. */
function viewerSize(image: { width: number; height: number }) {
  const { width, height } = displaySize(image.width, image.height);
  return { 'data-pswp-width': width, 'data-pswp-height': height };
}

/** The public page behind /s/<token>: no account, no navigation into the app. */
export function PublicSharePage({ view, token }: { view: SharedView; token: string }) {
  const many = view.images.length > 1 || view.albumName !== undefined;
  const heading = many ? `${view.images.length} shared images` : view.images[0]?.title;
  const count = view.albumCount ?? view.images.length;
  return (
    <Layout
      title={view.albumName ?? (many ? 'Shared images' : (view.images[0]?.title ?? 'Shared image'))}
      user={null}
      bare
    >
      <h1>{view.albumName ?? heading}</h1>
      {view.albumName !== undefined ? (
        <p class="muted">{count === 0 ? 'This album has no images yet.' : countOf(count, 'image')}</p>
      ) : null}
      {view.link.expiresAt !== null ? (
        <p class="muted">This link works until {formatDateTime(view.link.expiresAt)}.</p>
      ) : null}
      <div class="shared" id="shared-images">
        <SharedFigures view={view} many={many} />
      </div>
      <SharedLoadMore view={view} token={token} />
    </Layout>
  );
}

/**
 * An album link's next page, as the galleries' "Load more": a plain link without scripts; with
 * htmx, pressing it or scrolling it into view appends the next pictures.
 */
function SharedLoadMore({ view, token, isOob }: { view: SharedView; token: string; isOob?: boolean }) {
  const href = view.nextCursor ? `/s/${encodeURIComponent(token)}?cursor=${view.nextCursor}` : null;
  return <LoadMoreLink href={href} target="#shared-images" isOob={isOob} />;
}

/** A further page of an album link for htmx: its pictures, and the link to the page after. */
export function SharedNextFigures({ view, token }: { view: SharedView; token: string }) {
  return (
    <>
      <SharedFigures view={view} many />
      <SharedLoadMore view={view} token={token} isOob />
    </>
  );
}

function SharedFigures({ view, many }: { view: SharedView; many: boolean }) {
  return (
    <>
      {view.images.map((image) => (
        <figure class="display">
          {image.file ? (
            <FileCard title={image.title} file={image.file} size="display" />
          ) : image.url ? (
            // The same viewer as the galleries' (public/js/viewer.js); without scripts, the picture itself.
            <a
              href={image.url}
              class="viewer-link"
              data-image-id={image.id}
              data-pswp-src={image.url}
              {...viewerSize(image)}
            >
              <img
                src={image.url}
                alt={image.title}
                width={image.width}
                height={image.height}
                data-thumbhash={image.placeholder ?? undefined}
              />
            </a>
          ) : (
            <PendingImage image={image} size="display" />
          )}
          <figcaption>
            {many ? image.title : null}
            {image.downloadUrl ? (
              <>
                {' '}
                <a class="button secondary" href={image.downloadUrl}>
                  {view.link.downloadOriginal ? 'Download original' : 'Download'}
                  <span class="visually-hidden"> {image.title}</span>
                </a>
              </>
            ) : null}
          </figcaption>
        </figure>
      ))}
    </>
  );
}

export function SharePasswordPage({ action, error }: { action: string; error?: string | undefined }) {
  return (
    <Layout title="Password needed" user={null} bare>
      <section class="card narrow">
        <h1>This link needs a password</h1>
        <ErrorMessage message={error} />
        <form method="post" action={action} class="stack">
          <label for="link-password">Password</label>
          <input
            id="link-password"
            name="password"
            type="password"
            required
            autocomplete="off"
            maxlength={PASSWORD_MAX}
            autofocus
          />
          <button type="submit">Show the images</button>
        </form>
      </section>
    </Layout>
  );
}

/** Expired, revoked or unknown links: a page that says so, without the app's navigation. */
export function ShareGonePage({ title, message }: { title: string; message: string }) {
  return (
    <Layout title={title} user={null} bare>
      <section class="card narrow">
        <h1>{title}</h1>
        <p>{message}</p>
      </section>
    </Layout>
  );
}
