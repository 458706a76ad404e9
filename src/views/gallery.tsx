import type { Child } from 'hono/jsx';
import { countOf, formatDay, formatMonth } from '../format.js';
import { can } from '../policy.js';
import type { GalleryCard, ImageOrder } from '../services/images.js';
import type { User } from '../services/users.js';
import { asset } from './assets.js';
import { FileCard } from './components/file-card.js';
import { LoadMoreLink } from './components/load-more.js';
import { Notice } from './components/messages.js';
import { PendingImage } from './components/pending-image.js';
import { Layout } from './layout.js';

/** Where a gallery's links lead: its path, order and search. */
interface Listing {
  basePath: string;
  order: ImageOrder;
  /** the search typed, '' for none */
  search: string;
}

interface CardsProps extends Listing {
  cards: GalleryCard[];
  nextCursor: string | null;
  canChange: boolean;
  /** the time of the card before these (the page before's last), so its month is not headed again */
  previousSortAt: number | null;
}

/** A gallery's address with its order, search and position; the defaults are left out. */
export function galleryHref(
  basePath: string,
  at: { order: ImageOrder; search: string; cursor?: string; upto?: string },
): string {
  const params = new URLSearchParams();
  if (at.order !== 'uploaded') params.set('order', at.order);
  if (at.search) params.set('q', at.search);
  if (at.cursor) params.set('cursor', at.cursor);
  if (at.upto) params.set('upto', at.upto);
  const query = params.toString();
  return query ? `${basePath}?${query}` : basePath;
}

/**
 * The grid an image's page was opened from: its order, and its album if it was one. The page's
 * previous/next links follow that grid, and carry it on.
 */
export interface ImageContext {
  order: ImageOrder;
  album?: string | undefined;
}

/** An image's page (or `/thumb`, its card's picture), with the grid it was opened from. */
export function imageHref(id: string, context: ImageContext | undefined, path = ''): string {
  const params = new URLSearchParams();
  if (context?.order === 'taken') params.set('order', 'taken');
  if (context?.album) params.set('album', context.album);
  const query = params.toString();
  return `/images/${id}${path}${query ? `?${query}` : ''}`;
}

const monthOf = (ms: number) => new Date(ms).toISOString().slice(0, 7);
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The cards, each month and day headed where it starts: headings are full-width items of the one
 * list, so a page htmx appends continues it (a month already headed on the page before is not).
 */
function CardsWithHeadings({
  cards,
  canChange,
  previousSortAt,
  order,
}: {
  cards: GalleryCard[];
  canChange: boolean;
  previousSortAt: number | null;
  order: ImageOrder;
}) {
  let previous = previousSortAt;
  return (
    <>
      {cards.map((card) => {
        const isNewMonth = previous === null || monthOf(previous) !== monthOf(card.sortAt);
        const isNewDay = previous === null || dayOf(previous) !== dayOf(card.sortAt);
        previous = card.sortAt;
        return (
          <>
            {isNewMonth ? (
              <li class="grid-heading grid-month">
                <h2>{formatMonth(card.sortAt)}</h2>
              </li>
            ) : null}
            {isNewDay ? (
              <li class="grid-heading grid-day">
                <h3>{formatDay(card.sortAt)}</h3>
              </li>
            ) : null}
            <Card card={card} canChange={canChange} context={{ order }} />
          </>
        );
      })}
    </>
  );
}

/** How long a processing card waits before it asks again: 2 s, doubling up to 30 s. */
export const FIRST_POLL_SECONDS = 2;
const LAST_POLL_SECONDS = 30;

const THUMB_PX = 400;
const DISPLAY_PX = 1600;
/** How wide a grid cell is drawn (public/css/app.css): a third of a phone, about 12rem on wider screens. */
const CELL_SIZES = '(max-width: 40rem) 34vw, 12rem';

/**
 * The copies a high-density screen may choose from. A cell is a square crop, so what it shows
 * sharply depends on a copy's SHORTER side: each candidate is described by that, not its width.
 * The display copy is offered only when it is larger (a small original has the same copies).
 */
function sourceSet(card: GalleryCard, thumbUrl: string): string {
  const shortSide = (maxPx: number) => {
    const scale = Math.min(1, maxPx / Math.max(card.width, card.height, 1));
    return Math.max(1, Math.round(Math.min(card.width, card.height) * scale));
  };
  const thumb = `${thumbUrl} ${shortSide(THUMB_PX)}w`;
  return card.display && shortSide(DISPLAY_PX) > shortSide(THUMB_PX)
    ? `${thumb}, ${card.display.url} ${shortSide(DISPLAY_PX)}w`
    : thumb;
}

/**
 * A card's picture, linking to the image's page. While the image is processed it asks again
 * (htmx), waiting longer each time, and swaps itself for the thumbnail once there is one; only
 * this link is swapped, so a ticked checkbox beside it stays ticked.
 */
export function ThumbLink({
  card,
  context,
  waitSeconds = FIRST_POLL_SECONDS,
}: {
  card: GalleryCard;
  context: ImageContext;
  waitSeconds?: number;
}) {
  const next = Math.min(waitSeconds * 2, LAST_POLL_SECONDS);
  const thumbHref = imageHref(card.id, context, '/thumb');
  const poll =
    card.state === 'processing'
      ? {
          'hx-get': `${thumbHref}${thumbHref.includes('?') ? '&' : '?'}wait=${next}`,
          'hx-trigger': `load delay:${waitSeconds}s`,
          'hx-swap': 'outerHTML',
        }
      : {};
  // What the viewer (public/js/viewer.js) shows; a card without it links to the image's page.
  const viewer = card.display
    ? {
        'data-pswp-src': card.display.url,
        'data-pswp-width': card.display.width,
        'data-pswp-height': card.display.height,
        // the grid crops thumbnails square: the opening animation starts from the crop
        'data-pswp-cropped': 'true',
      }
    : {};
  return (
    <a href={imageHref(card.id, context)} class="thumb-link" data-image-id={card.id} {...poll} {...viewer}>
      {card.file && card.state !== 'failed' ? (
        <FileCard title={card.title} file={card.file} size="thumb" />
      ) : card.thumbUrl ? (
        <img
          src={card.thumbUrl}
          srcset={sourceSet(card, card.thumbUrl)}
          sizes={CELL_SIZES}
          alt={card.title}
          width={card.width}
          height={card.height}
          loading="lazy"
          data-thumbhash={card.placeholder ?? undefined}
        />
      ) : (
        <PendingImage image={card} size="thumb" />
      )}
    </a>
  );
}

/** One card of a grid (the gallery's, an album's). */
export function Card({
  card,
  canChange,
  context,
}: {
  card: GalleryCard;
  canChange: boolean;
  context: ImageContext;
}) {
  return (
    <li class="thumb" id={`image-${card.id}`}>
      <ThumbLink card={card} context={context} />
      <div class="thumb-bar">
        {canChange ? (
          <>
            <input type="checkbox" name="ids" value={card.id} form="bulk-delete" id={`select-${card.id}`} />
            <label for={`select-${card.id}`} class="thumb-title" title={card.title}>
              <span class="visually-hidden">Select </span>
              {card.title}
            </label>
            {/* To the trash at once (htmx), where "Undo" on the card brings it back; without scripts, a page asks first. */}
            <a
              href={`/images/${card.id}/delete`}
              class="thumb-delete"
              hx-post={`/images/${card.id}/delete`}
              hx-target={`#image-${card.id}`}
              hx-swap="outerHTML"
            >
              Delete<span class="visually-hidden"> {card.title}</span>
            </a>
          </>
        ) : (
          <span class="thumb-title" title={card.title}>
            {card.title}
          </span>
        )}
      </div>
    </li>
  );
}

/** What a card becomes when Delete moved its image to the trash (htmx): a way back, in its place. */
export function TrashedCard({ id, title }: { id: string; title: string }) {
  return (
    <li class="thumb thumb-trashed" id={`image-${id}`}>
      <p role="status">“{title}” is in the trash.</p>
      <form
        method="post"
        action={`/images/${id}/restore`}
        hx-post={`/images/${id}/restore`}
        hx-target={`#image-${id}`}
        hx-swap="outerHTML"
      >
        <button type="submit" class="secondary">
          Undo<span class="visually-hidden"> deleting {title}</span>
        </button>
      </form>
    </li>
  );
}

/** After Delete without scripts: how many went to the trash, and "Undo" for that one press. */
function UndoNotice({ undo, back }: { undo: TrashUndo; back: string }) {
  return (
    <div class="notice undo" role="status">
      <p>Moved {countOf(undo.count, 'image')} to the trash.</p>
      <form method="post" action="/trash/undo" class="inline">
        <input type="hidden" name="owner" value={undo.ownerId} />
        <input type="hidden" name="at" value={String(undo.at)} />
        <input type="hidden" name="back" value={back} />
        <button type="submit" class="secondary">
          Undo
        </button>
      </form>
    </div>
  );
}

/**
 * A grid's form for the ticked cards (their checkboxes belong to it by its id), with the actions
 * (`children`) on them. Without JavaScript the buttons are always enabled (the server answers an
 * empty selection with a sentence); public/js/grid.js shows the count and "Select all" and
 * disables the buttons while nothing is ticked.
 */
export function SelectionForm({ action, children }: { action: string; children: Child }) {
  return (
    <form id="bulk-delete" method="post" action={action} class="bulk row" data-selection>
      <button type="button" class="secondary" data-select-all hidden>
        Select all
      </button>
      <span class="selection-count" aria-live="polite" data-selection-count hidden />
      {children}
    </form>
  );
}

/** The gallery's actions on the ticked cards: share, add to an album, delete. */
function BulkForm({ basePath }: { basePath: string }) {
  return (
    <SelectionForm action="/images/delete">
      <input type="hidden" name="back" value={basePath} />
      <button type="submit" class="secondary" formaction="/shares/new">
        Share selected
      </button>
      <button type="submit" class="secondary" formaction="/albums/add">
        Add to album
      </button>
      <button type="submit" class="danger">
        Delete selected
      </button>
    </SelectionForm>
  );
}

/**
 * The next page: a plain link without scripts; with htmx, pressing it or scrolling it into view
 * appends the next cards to the grid (and the route puts how far that got into the address bar).
 */
export function LoadMore({
  nextCursor,
  isOob,
  ...listing
}: Listing & { nextCursor: string | null; isOob?: boolean }) {
  const href = nextCursor ? galleryHref(listing.basePath, { ...listing, cursor: nextCursor }) : null;
  return <LoadMoreLink href={href} target="#grid" isOob={isOob} />;
}

/**
 * An order switch's link: it names its order even when that is the default, since choosing it is
 * remembered (the bare address opens in the order last chosen; see src/routes/gallery.tsx).
 */
function orderHref(basePath: string, order: ImageOrder, search: string): string {
  const params = new URLSearchParams({ order });
  if (search) params.set('q', search);
  return `${basePath}?${params}`;
}

/** The order switch and the search box: plain links and a GET form, so they work without scripts. */
function GalleryTools({ basePath, order, search }: Listing) {
  const orders: [ImageOrder, string][] = [
    ['uploaded', 'Upload time'],
    ['taken', 'Date taken'],
  ];
  return (
    <div class="gallery-tools">
      <search class="gallery-search">
        <form method="get" action={basePath} class="row gallery-search-form">
          <label for="gallery-search" class="visually-hidden">
            Search titles and file names
          </label>
          <input
            type="search"
            id="gallery-search"
            name="q"
            value={search}
            maxlength={200}
            placeholder="Search titles and file names"
          />
          {order === 'taken' ? <input type="hidden" name="order" value="taken" /> : null}
          <button type="submit" class="secondary">
            Search
          </button>
          {search ? <a href={galleryHref(basePath, { order, search: '' })}>Clear</a> : null}
        </form>
      </search>
      <nav class="gallery-order" aria-label="Order">
        <span class="muted">Newest first by</span>{' '}
        {orders.map(([value, label]) => (
          <>
            <a
              class="gallery-order-link"
              href={orderHref(basePath, value, search)}
              aria-current={value === order ? 'page' : undefined}
            >
              {label}
            </a>{' '}
          </>
        ))}
      </nav>
    </div>
  );
}

/** The grid of a gallery's first page (or the pages down to `?upto=`), and what continues it. */
function Grid({ cards, nextCursor, canChange, ...listing }: Omit<CardsProps, 'previousSortAt'>) {
  return (
    <>
      <ul id="grid" class="grid">
        <CardsWithHeadings cards={cards} canChange={canChange} previousSortAt={null} order={listing.order} />
      </ul>
      {cards.length === 0 ? (
        <p class="muted">{listing.search ? `No images match “${listing.search}”.` : 'No more images.'}</p>
      ) : null}
      <LoadMore nextCursor={nextCursor} {...listing} />
      <script type="module" src={asset('js/paging.js')} />
    </>
  );
}

/** The next page of cards for htmx to append, with the "Load more" link swapped out of band. */
export function GalleryCards({ cards, nextCursor, canChange, previousSortAt, ...listing }: CardsProps) {
  return (
    <>
      <CardsWithHeadings
        cards={cards}
        canChange={canChange}
        previousSortAt={previousSortAt}
        order={listing.order}
      />
      <LoadMore nextCursor={nextCursor} {...listing} isOob />
    </>
  );
}

export interface GalleryPageProps extends Listing {
  user: User;
  owner: User;
  cards: GalleryCard[];
  nextCursor: string | null;
  isFirstPage: boolean;
  notice?: string | undefined;
  /** what one press of Delete just moved to the trash (the redirect after it says), to undo */
  undo?: TrashUndo | undefined;
}

/** One press of Delete: how many of whose images went to the trash, and when (what Undo names). */
export interface TrashUndo {
  count: number;
  at: number;
  ownerId: string;
}

export function GalleryPage({
  user,
  owner,
  cards,
  nextCursor,
  basePath,
  order,
  search,
  isFirstPage,
  notice,
  undo,
}: GalleryPageProps) {
  const isOwn = user.id === owner.id;
  const canUpload = isOwn && can(user, 'image.upload');
  const canChange = can(user, 'image.change');
  return (
    <Layout title={isOwn ? 'Your gallery' : `Gallery of ${owner.email}`} user={user}>
      <div class="page-head">
        <h1>{isOwn ? 'Your gallery' : `Gallery of ${owner.email}`}</h1>
        <div class="row">
          {canChange ? (
            <a class="button secondary" href={isOwn ? '/trash' : `/users/${owner.id}/trash`}>
              Trash
            </a>
          ) : null}
          {canUpload ? (
            <a class="button" href="/upload">
              Upload images
            </a>
          ) : null}
        </div>
      </div>
      <Notice message={notice} />
      {undo ? <UndoNotice undo={undo} back={basePath} /> : null}
      {cards.length === 0 && isFirstPage && !search ? (
        <section class="empty">
          <h2>No images yet</h2>
          {canUpload ? (
            <p>
              Images you upload will appear here, newest first. <a href="/upload">Upload your first image</a>.
            </p>
          ) : (
            <p>There is nothing here yet.</p>
          )}
        </section>
      ) : (
        <>
          {/* A search that found nothing has nothing to select. */}
          {canChange && cards.length > 0 ? <BulkForm basePath={basePath} /> : null}
          <GalleryTools basePath={basePath} order={order} search={search} />
          <Grid {...{ cards, nextCursor, canChange, basePath, order, search }} />
          <script type="module" src={asset('js/grid.js')} />
        </>
      )}
    </Layout>
  );
}

export interface SharedGalleryPageProps extends Listing {
  user: User;
  cards: GalleryCard[];
  nextCursor: string | null;
  isFirstPage: boolean;
}

/** What owners chose to show every signed-in user; read-only for everyone here. */
export function SharedGalleryPage({
  user,
  cards,
  nextCursor,
  isFirstPage,
  order,
  search,
}: SharedGalleryPageProps) {
  return (
    <Layout title="Shared with everyone" user={user}>
      <div class="page-head">
        <h1>Shared with everyone</h1>
      </div>
      {cards.length === 0 && isFirstPage && !search ? (
        <section class="empty">
          <h2>Nothing shared yet</h2>
          <p>Images their owners show to all signed-in users appear here.</p>
        </section>
      ) : (
        <>
          <GalleryTools basePath="/shared" order={order} search={search} />
          <Grid {...{ cards, nextCursor, canChange: false, basePath: '/shared', order, search }} />
          <script type="module" src={asset('js/grid.js')} />
        </>
      )}
    </Layout>
  );
}
