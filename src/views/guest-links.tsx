import { countOf, formatBytes, formatDateTime } from '../format.js';
import { PASSWORD_MAX } from '../limits.js';
import {
  GUEST_LABEL_MAX,
  GUEST_MESSAGE_MAX,
  GUEST_NAME_MAX,
  type GuestLink,
  type GuestLinkListing,
  type GuestLinkState,
  type VisitImage,
} from '../services/guest-links.js';
import { SHARE_EXPIRIES } from '../services/shares.js';
import type { PresignedUpload } from '../services/uploads.js';
import type { User } from '../services/users.js';
import { LinkPasswordField } from './components/fields.js';
import { ErrorMessage, Notice } from './components/messages.js';
import { PostButton } from './components/post-button.js';
import { TableHead } from './components/table-head.js';
import { TableScroll } from './components/table-scroll.js';
import { Layout } from './layout.js';
import { NewLinkNotice } from './shares.js';
import { UploadForm } from './upload.js';

const STATE_WORDS: Record<GuestLinkState, string> = {
  active: 'in use',
  expired: 'expired',
  revoked: 'turned off',
  full: 'full',
};

function stateText({ link, state }: Pick<GuestLinkListing, 'link' | 'state'>): string {
  if (state !== 'active') return STATE_WORDS[state];
  return link.expiresAt === null ? 'in use, never expires' : `in use until ${formatDateTime(link.expiresAt)}`;
}

/** What a link still takes, in the guest's words. */
function allowance(link: GuestLink): string {
  const files = Math.max(0, link.maxFiles - link.filesAccepted);
  const bytes = Math.max(0, link.maxBytes - link.bytesAccepted);
  const until = link.expiresAt === null ? '' : `, until ${formatDateTime(link.expiresAt)}`;
  return `Up to ${countOf(files, 'more file')}, ${formatBytes(bytes)} left in all, at most ${formatBytes(link.maxFileBytes)} a file${until}.`;
}

/** The owner's page of guest upload links: making one, and the list with what each brought. */
export function GuestLinksPage(props: {
  user: User;
  rows: GuestLinkListing[];
  everyone: boolean;
  newUrl?: string | undefined;
  notice?: string | undefined;
  /** why the new link was not made (shown in its form) */
  error?: string | undefined;
  /** why a link was not turned on again (shown above the list) */
  listError?: string | undefined;
  maxUploadBytes: number;
  /** whether this server sends email (SMTP_URL): the owner's emails wait for it otherwise */
  canEmail: boolean;
  /** the person's albums, one of which a link may fill */
  albums: { id: string; name: string }[];
}) {
  const { user, rows, everyone } = props;
  return (
    <Layout title="Guest upload links" user={user}>
      <h1>Guest upload links</h1>
      <p class="muted">
        Anyone with such a link can send you photos without an account, within the limits you set. They land
        in your gallery, marked with the link's label. Turn a link off to stop it at once; turn it on again
        and the same address works. The address is shown once, when the link is made: keep it then.
      </p>
      <NewLinkNotice url={props.newUrl} what="upload link" />
      <Notice message={props.notice} />
      {user.role === 'admin' ? (
        <p>
          {everyone ? (
            <a href="/guest-links">Only my links</a>
          ) : (
            <a href="/guest-links?all=1">Everyone's links</a>
          )}
        </p>
      ) : null}
      <details class="card" open={rows.length === 0 || props.error !== undefined}>
        <summary>Make a guest upload link</summary>
        <ErrorMessage message={props.error} />
        <form method="post" action={everyone ? '/guest-links?all=1' : '/guest-links'} class="stack">
          <label for="guest-label">Label (guests see it; uploads are marked with it)</label>
          <input
            id="guest-label"
            name="label"
            required
            maxlength={GUEST_LABEL_MAX}
            placeholder="Wedding photos"
          />
          <label for="guest-message">Message to guests (optional)</label>
          <textarea id="guest-message" name="message" maxlength={GUEST_MESSAGE_MAX} rows={3} />
          <label for="guest-expiry">Link expires after</label>
          <select id="guest-expiry" name="expiry">
            {Object.entries(SHARE_EXPIRIES).map(([value, { label }]) => (
              <option value={value} selected={value === '7d'}>
                {label}
              </option>
            ))}
          </select>
          <label for="guest-files">Files it takes in all (blank: 100)</label>
          <input id="guest-files" name="max_files" inputmode="numeric" pattern="[0-9]*" />
          <label for="guest-mib">MiB it takes in all (blank: 10240)</label>
          <input id="guest-mib" name="max_mib" inputmode="numeric" pattern="[0-9]*" />
          <label for="guest-file-mib">
            MiB a file (blank: the server's limit, {formatBytes(props.maxUploadBytes)})
          </label>
          <input id="guest-file-mib" name="max_file_mib" inputmode="numeric" pattern="[0-9]*" />
          <LinkPasswordField id="guest-link-password" />
          {props.albums.length > 0 ? (
            <>
              <label for="guest-album">Put what guests send in an album (optional)</label>
              <select id="guest-album" name="album">
                <option value="">No album</option>
                {props.albums.map((album) => (
                  <option value={album.id}>{album.name}</option>
                ))}
              </select>
            </>
          ) : null}
          <label class="check">
            <input type="checkbox" name="ask_name" value="1" /> Ask guests for their name
          </label>
          <label class="check">
            <input type="checkbox" name="notify" value="1" checked /> Email me when guests send photos
            {props.canEmail ? null : ' (once this server sends email: it has no SMTP_URL yet)'}
          </label>
          <button type="submit">Make upload link</button>
        </form>
      </details>
      <ErrorMessage message={props.listError} />
      <GuestLinksTable rows={rows} everyone={everyone} />
    </Layout>
  );
}

function GuestLinksTable({ rows, everyone }: { rows: GuestLinkListing[]; everyone: boolean }) {
  if (rows.length === 0) return <p class="muted">No guest upload links yet.</p>;
  return (
    <TableScroll label="Guest upload links">
      <table>
        <caption class="visually-hidden">Guest upload links</caption>
        <TableHead
          columns={[...(everyone ? ['Owner'] : []), 'Label', 'Made', 'State', 'Received', 'Last upload']}
          actions
        />
        <tbody>
          {rows.map((row) => (
            <tr>
              {everyone ? <td>{row.link.ownerEmail}</td> : null}
              <td>
                <a href={`/guest-links/${row.link.id}`}>{row.link.label}</a>
                {row.link.hasPassword ? ' (password)' : ''}
                {row.link.albumName !== null ? `, into the album ${row.link.albumName}` : ''}
              </td>
              <td>{formatDateTime(row.link.createdAt)}</td>
              <td>{stateText(row)}</td>
              <td>
                {row.link.filesAccepted} of {row.link.maxFiles} files, {formatBytes(row.link.bytesAccepted)}{' '}
                of {formatBytes(row.link.maxBytes)}
              </td>
              <td>{row.link.lastUsedAt === null ? '—' : formatDateTime(row.link.lastUsedAt)}</td>
              <td class="actions">
                <OnOffButton row={row} everyone={everyone} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

/**
 * Turn off a link in use, or on again one that was turned off (until it expires); nothing else.
 * From the list of everyone's links (`everyone`), the answer comes back to that list.
 */
function OnOffButton({ row, everyone = false }: { row: GuestLinkListing; everyone?: boolean }) {
  const hiddenLabel = `the link “${row.link.label}”`;
  const back = everyone ? '?all=1' : '';
  if (row.state !== 'revoked')
    return (
      <PostButton
        action={`/guest-links/${row.link.id}/revoke${back}`}
        label="Turn off"
        hiddenLabel={hiddenLabel}
        danger
      />
    );
  if (!row.canTurnOn) return null;
  return (
    <PostButton
      action={`/guest-links/${row.link.id}/turn-on${back}`}
      label="Turn on again"
      hiddenLabel={hiddenLabel}
    />
  );
}

/** A file a link brought: its thumbnail (a box until it is ready) and its title, which names it. */
function SentThumb({ image }: { image: VisitImage }) {
  return (
    <>
      {image.thumbUrl ? (
        <img class="guest-sent-thumb" src={image.thumbUrl} alt="" width={160} height={160} loading="lazy" />
      ) : (
        <span class="guest-sent-thumb upload-preview none">{image.state === 'failed' ? 'failed' : '…'}</span>
      )}
      <span class="guest-sent-title">{image.title}</span>
    </>
  );
}

/** What one link brought, for its owner (or an admin): each image with who sent it. */
export function GuestLinkImagesPage(props: { user: User; row: GuestLinkListing; images: VisitImage[] }) {
  const { row, images } = props;
  const { link } = row;
  return (
    <Layout title={`From “${link.label}”`} user={props.user}>
      <h1>From “{link.label}”</h1>
      <p class="muted">
        {countOf(link.filesAccepted, 'file')} received, {formatBytes(link.bytesAccepted)}.{' '}
        <a href="/guest-links">All guest upload links</a>
      </p>
      <p>
        State: {stateText(row)} <OnOffButton row={row} everyone={link.ownerId !== props.user.id} />
      </p>
      {images.length === 0 ? (
        <p class="muted">Nothing has come through this link yet (or it was all deleted).</p>
      ) : (
        <ul class="guest-sent">
          {images.map((image) => (
            <li>
              <a href={`/images/${image.id}`}>
                <SentThumb image={image} />
              </a>
              {image.guestName ? <span class="muted">from {image.guestName}</span> : null}
            </li>
          ))}
        </ul>
      )}
    </Layout>
  );
}

/**
 * The guest's page behind /u/<token>: no account, no navigation into the app. The owner's label
 * and message, what the link still takes, the plain upload form (straight to the bucket), and
 * what this visit sent so far.
 */
export function GuestUploadPage(props: {
  link: GuestLink;
  /** the page's own address (`/u/<token>`), where upload.js signs and completes */
  path: string;
  form?: PresignedUpload | undefined;
  refusal?: string | undefined;
  notice?: string | undefined;
  images: VisitImage[];
  accept: 'images' | 'any';
  /** asked before any upload: the link's password, the guest's name */
  gate?: { password: boolean; name: boolean; error?: string; typedName?: string } | undefined;
}) {
  const { link, form, images, gate } = props;
  return (
    <Layout title={link.label} user={null} bare>
      <h1>{link.label}</h1>
      {link.message ? <p class="guest-message">{link.message}</p> : null}
      <p class="muted">{allowance(link)}</p>
      <Notice message={props.notice} />
      <ErrorMessage message={props.refusal} />
      {gate ? (
        <form method="post" action={props.path} class="card narrow stack">
          <ErrorMessage message={gate.error} />
          {gate.password ? (
            <>
              <label for="guest-password">This link’s password</label>
              <input
                id="guest-password"
                name="password"
                type="password"
                autocomplete="off"
                required
                maxlength={PASSWORD_MAX}
              />
            </>
          ) : null}
          {gate.name ? (
            <>
              <label for="guest-name">Your name (the owner sees it with what you send)</label>
              <input
                id="guest-name"
                name="name"
                autocomplete="name"
                required
                maxlength={GUEST_NAME_MAX}
                value={gate.typedName ?? ''}
              />
            </>
          ) : null}
          <button type="submit">Continue</button>
        </form>
      ) : null}
      {form ? (
        <UploadForm
          form={form}
          maxBytes={link.maxFileBytes}
          anyFile={props.accept === 'any'}
          guest={{ path: props.path }}
        />
      ) : null}
      {images.length > 0 ? (
        <section>
          <h2>You sent {countOf(images.length, 'file')}</h2>
          <ul class="guest-sent">
            {images.map((image) => (
              <li>
                <SentThumb image={image} />
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </Layout>
  );
}
