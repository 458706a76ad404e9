import { countOf } from '../format.js';
import { TITLE_MAX } from '../limits.js';
import { can } from '../policy.js';
import type { Album } from '../services/albums.js';
import type { GalleryCard, Image } from '../services/images.js';
import type { User } from '../services/users.js';
import { asset } from './assets.js';
import { ErrorMessage, Notice } from './components/messages.js';
import { Card, LoadMore, SelectionForm } from './gallery.js';
import { Layout } from './layout.js';
import { type LinkRowData, LinksTable, NewLinkNotice, ShareForm } from './shares.js';

function NameField({ id, value }: { id: string; value?: string }) {
  return (
    <>
      <label for={id}>Album name</label>
      <input id={id} name="name" required maxlength={TITLE_MAX} value={value} autocomplete="off" />
    </>
  );
}

/** An album's cover, name and count, linking to its page. */
function AlbumTile({ album }: { album: Album }) {
  return (
    <li class="album-tile">
      <a href={`/albums/${album.id}`} class="album-link">
        {album.coverUrl ? (
          <img src={album.coverUrl} alt="" loading="lazy" class="album-cover" />
        ) : (
          <span class="album-cover album-cover-empty" aria-hidden="true" />
        )}
        <span class="album-name">{album.name}</span>
      </a>
      <span class="muted">{countOf(album.imageCount, 'image')}</span>
    </li>
  );
}

export interface AlbumsPageProps {
  user: User;
  owner: User;
  albums: Album[];
  notice?: string | undefined;
  error?: string | undefined;
}

/** Someone's albums, with their covers and counts; on one's own, a form to make another. */
export function AlbumsPage({ user, owner, albums, notice, error }: AlbumsPageProps) {
  const isOwn = user.id === owner.id;
  const title = isOwn ? 'Your albums' : `Albums of ${owner.email}`;
  return (
    <Layout title={title} user={user}>
      <div class="page-head">
        <h1>{title}</h1>
      </div>
      <Notice message={notice} />
      <ErrorMessage message={error} />
      {isOwn && can(user, 'album.create') ? (
        <form method="post" action="/albums" class="row album-new">
          <NameField id="new-album-name" />
          <button type="submit">New album</button>
        </form>
      ) : null}
      {albums.length === 0 ? (
        <section class="empty">
          <h2>No albums yet</h2>
          <p>
            {isOwn
              ? 'Make one here, or select images in your gallery and press “Add to album”.'
              : 'This person has no albums.'}
          </p>
        </section>
      ) : (
        <ul class="albums">
          {albums.map((album) => (
            <AlbumTile album={album} />
          ))}
        </ul>
      )}
    </Layout>
  );
}

export interface AlbumPageProps {
  user: User;
  album: Album;
  cards: GalleryCard[];
  nextCursor: string | null;
  isFirstPage: boolean;
  links: LinkRowData[];
  newUrl?: string | undefined;
  notice?: string | undefined;
  error?: string | undefined;
}

/**
 * An album: the gallery's grid of its images (selecting some lets them be taken out or made the
 * cover), then renaming, sharing and deleting it.
 */
export function AlbumPage(props: AlbumPageProps) {
  const { user, album, cards, nextCursor, isFirstPage } = props;
  const base = `/albums/${album.id}`;
  const isOwn = user.id === album.ownerId;
  return (
    <Layout title={album.name} user={user}>
      <p>
        <a href={isOwn ? '/albums' : `/users/${album.ownerId}/albums`}>← Albums</a>
      </p>
      <div class="page-head">
        <h1>{album.name}</h1>
        <span class="muted">{countOf(album.imageCount, 'image')}</span>
      </div>
      <NewLinkNotice url={props.newUrl} />
      <Notice message={props.notice} />
      <ErrorMessage message={props.error} />
      {cards.length === 0 && isFirstPage ? (
        <section class="empty">
          <h2>This album is empty</h2>
          <p>
            Select images in the <a href={isOwn ? '/' : `/users/${album.ownerId}`}>gallery</a> and press “Add
            to album”.
          </p>
        </section>
      ) : (
        <>
          <SelectionForm action={`${base}/remove`}>
            <button type="submit" class="secondary">
              Remove selected from album
            </button>
            <button type="submit" class="secondary" formaction={`${base}/cover`}>
              Use selected as cover
            </button>
          </SelectionForm>
          <ul id="grid" class="grid">
            {cards.map((card) => (
              <Card card={card} canChange context={{ order: 'uploaded', album: album.id }} />
            ))}
          </ul>
          {cards.length === 0 ? <p class="muted">No more images.</p> : null}
          <LoadMore nextCursor={nextCursor} basePath={base} order="uploaded" search="" />
          <script type="module" src={asset('js/grid.js')} />
        </>
      )}
      <section class="album-manage">
        <h2>Share this album</h2>
        <p class="muted">
          A link shows the album’s images as they are when it is opened, images added later too.
        </p>
        <ShareForm action={`${base}/shares`} />
        <LinksTable rows={props.links} showImages={false} back={base} />
        <h2>Rename</h2>
        <form method="post" action={`${base}/rename`} class="row">
          <NameField id="album-name" value={album.name} />
          <button type="submit">Rename</button>
        </form>
        <details class="album-delete">
          <summary>Delete album…</summary>
          <p>The album goes and its share links stop working; its images stay in the gallery.</p>
          <form method="post" action={`${base}/delete`}>
            <button type="submit" class="danger">
              Delete “{album.name}”
            </button>
          </form>
        </details>
      </section>
    </Layout>
  );
}

/** Where the gallery's selection goes: one of the owner's albums, or a new one. */
export function AddToAlbumPage(props: {
  user: User;
  images: Image[];
  albums: Album[];
  error?: string | undefined;
}) {
  return (
    <Layout title="Add to album" user={props.user}>
      <section class="card narrow">
        <h1>Add {countOf(props.images.length, 'image')} to an album</h1>
        <ErrorMessage message={props.error} />
        <form method="post" action="/albums" class="stack">
          {props.images.map((image) => (
            <input type="hidden" name="ids" value={image.id} />
          ))}
          {props.albums.length > 0 ? (
            <fieldset class="album-choices">
              <legend>Add to</legend>
              {props.albums.map((album) => (
                <button
                  type="submit"
                  class="secondary"
                  formaction={`/albums/${album.id}/images`}
                  formnovalidate
                >
                  {album.name} <span class="muted">({countOf(album.imageCount, 'image')})</span>
                </button>
              ))}
            </fieldset>
          ) : null}
          <NameField id="album-name" />
          <button type="submit">Make a new album with them</button>
        </form>
        <p>
          <a href="/">Cancel</a>
        </p>
      </section>
    </Layout>
  );
}
