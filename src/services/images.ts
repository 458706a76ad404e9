import type { AppDb } from '../db/database.js';
import {
  type CardRow,
  type Image,
  type ImageOrder,
  type ImagePosition,
  imagesRepository,
  rowToImage,
} from '../db/repositories/images.js';
import { storageDeletionsRepository } from '../db/repositories/storage-deletions.js';
import type { ImageState } from '../db/schema.js';
import { ACCEPTED_TYPES, fileTypeLabel, isImageType } from '../image-types.js';
import { TITLE_MAX } from '../limits.js';
import { can } from '../policy.js';
import type { Storage } from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import { type ImageCursor, imageCursor, writeCursor } from './cursors.js';
import { Conflict, Forbidden, fromStorage, Invalid, NotFound } from './errors.js';
import type { Notifications } from './notifications.js';
import type { PendingUploads } from './pending-uploads.js';
import { displaySize } from './thumbnails.js';
import type { User } from './users.js';

export { type Image, type ImageOrder, type ImageRow, rowToImage } from '../db/repositories/images.js';

const PAGE_SIZE = 60;
/**
 * A gallery rebuilt up to where someone got (`?upto=`, what the URL says after pages loaded by
 * scrolling) shows at most this many cards; past them it carries on with "Load more".
 */
const UPTO_MAX = 600;
/** Search reads this many characters and words of what was typed, and this long a word. */
const SEARCH_MAX_CHARS = 200;
const SEARCH_MAX_WORDS = 8;
const SEARCH_MAX_WORD = 64;

const URL_TTL_SECONDS = 2 * 60 * 60;
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** The trash page shows this many images (the latest moved there); the purge and "Empty" work in batches of it. */
const TRASH_PAGE = 500;

/** An image in the trash, and since when. */
export interface TrashItem {
  card: GalleryCard;
  trashedAt: number;
}

export interface TrashPage {
  /** the latest moved there, at most TRASH_PAGE */
  items: TrashItem[];
  /** how many are there in all */
  total: number;
}

export interface GalleryCard {
  id: string;
  title: string;
  width: number;
  height: number;
  /** null until the image is ready (its thumbnail is made in the background) */
  thumbUrl: string | null;
  state: ImageState;
  failure: string | null;
  placeholder: string | null;
  /** the display copy (the viewer shows it) and its size; null until the image is ready */
  display: { url: string; width: number; height: number } | null;
  /** the time it is ordered by: upload time, or date taken (camera time) in the timeline */
  sortAt: number;
  /** set for a file that is not one of our image types (ACCEPT=any): no copies, a file card */
  file: { label: string; bytes: number } | null;
}

/** An image's neighbours in the grid it is shown in (newest first): null at either end. */
export interface Neighbours {
  /** the newer image, shown before it */
  previous: string | null;
  /** the older image, shown after it */
  next: string | null;
}

/** What a gallery page asks for: its order, where it starts, and an optional search. */
export interface GalleryQuery {
  order: ImageOrder;
  /** the page after this card (a page link); its order wins over `order` */
  after: ImageCursor | null;
  /** from the first card down to this one (a URL recording how far someone got) */
  upto?: ImageCursor | null;
  /** words to find in titles and original names, as typed */
  search?: string;
}

export interface GalleryPageResult {
  cards: GalleryCard[];
  /** the next page's link, null on the last page */
  nextCursor: string | null;
  /** the last card shown as a cursor (what `?upto=` takes), null when none is */
  lastCursor: string | null;
  order: ImageOrder;
}

/**
 * The words a search looks for: runs of letters, digits and marks, as both databases' full-text
 * indexes split titles and names into words; everything else typed (quotes, operators, NUL) only
 * separates them. Bounded, so a 10,000-character search costs what a short one does.
 */
export function searchWords(typed: string): string[] {
  const words =
    typed
      .slice(0, SEARCH_MAX_CHARS)
      .toLowerCase()
      .match(/[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu) ?? [];
  return [...new Set(words)].slice(0, SEARCH_MAX_WORDS).map((w) => [...w].slice(0, SEARCH_MAX_WORD).join(''));
}

export function createImages(deps: {
  database: AppDb;
  storage: Storage;
  clock: Clock;
  audit: Audit;
  notifications: Notifications;
  pending: PendingUploads;
  /** Settles once this process's copy of a new upload's original into place has ended. */
  originalSettled?: (imageId: string) => Promise<void>;
}) {
  const { database, storage, clock, audit, notifications, pending } = deps;
  const images = imagesRepository(database);
  const deletions = storageDeletionsRepository(database);

  /** URLs signed at the top of the hour repeat for an hour, so browsers cache thumbnails. */
  const signingDate = () => new Date(Math.floor(clock() / HOUR_MS) * HOUR_MS);

  /**
   * Whether the user may see this image: as the policy says, and an image in the trash only its
   * owner and admins (for anyone else it is gone).
   */
  const maySee = (user: User, image: Image | null): image is Image =>
    image !== null &&
    can(user, 'image.view', image) &&
    (image.trashedAt === null || can(user, 'image.change', image));

  /**
   * The checks of getForUser and getForChange, on an image already loaded (or not found). An image
   * in the trash is only restored or deleted for good (`trash: 'any'`): anything else waits until
   * it is restored.
   */
  function mayChange(user: User, image: Image | null, trash: 'outside' | 'any' = 'outside'): Image {
    if (!maySee(user, image)) throw new NotFound('There is no such image.');
    if (!can(user, 'image.change')) throw new Forbidden('Viewers cannot change images.');
    if (!can(user, 'image.change', image)) throw new Forbidden('Only the owner of this image can change it.');
    if (trash === 'outside' && image.trashedAt !== null)
      throw new Conflict(`“${image.title}” is in the trash: restore it first.`);
    return image;
  }

  /** Loads an image the user may act on; anything else is "not found", so ids reveal nothing. */
  async function getForUser(user: User, id: string): Promise<Image> {
    const row = await images.get(id);
    const image = row ? rowToImage(row) : null;
    if (!maySee(user, image)) throw new NotFound('There is no such image.');
    return image;
  }

  /** As getForUser, then the role and ownership: a stranger's private id is NotFound for everyone. */
  async function getForChange(user: User, id: string): Promise<Image> {
    const row = await images.get(id);
    return mayChange(user, row ? rowToImage(row) : null);
  }

  /**
   * getForChange for each id, in one query: the images in the order given, or the error the first
   * id the user may not change gets.
   */
  async function getAllForChange(
    user: User,
    ids: readonly string[],
    trash: 'outside' | 'any' = 'outside',
  ): Promise<Image[]> {
    const rows = await images.getMany([...new Set(ids)]);
    const byId = new Map(rows.map((row) => [row.id, rowToImage(row)]));
    return ids.map((id) => mayChange(user, byId.get(id) ?? null, trash));
  }

  /**
   * Deletes these images and their objects for good (by `actor`, or the trash's purge when null),
   * if they are still in the trash (and went there before `before`, when given): one restored
   * meanwhile stays, and so does one restored and deleted again since the caller looked. Returns
   * how many went.
   */
  async function destroy(actor: Actor | null, ids: readonly string[], before = Number.POSITIVE_INFINITY) {
    // Rows are read again inside the transaction: a replace that committed meanwhile changed the keys.
    // Set-based, so five hundred images cost a few statements, not thousands, in the transaction.
    const { keys, count } = await database.transaction(async () => {
      const now = clock();
      // In the order asked, so the audit rows are too.
      const unique = [...new Set(ids)];
      const byId = new Map((await images.getMany(unique)).map((row) => [row.id, row]));
      const rows = unique.flatMap((id) => {
        const row = byId.get(id);
        return row && row.trashed_at !== null && row.trashed_at < before ? [row] : [];
      });
      const found = rows.map((row) => row.id);
      // Replacements still uploading end with them: their files go now, what their policies
      // may still write goes when the sweep removes their rows.
      const all = await pending.closeReplacementsOf(found, now);
      const deleted = await images.deleteByIds(found);
      for (const row of rows.filter((r) => deleted.has(r.id))) {
        await audit.change(actor, 'delete', {
          target: row.id,
          detail: actor ? null : 'in the trash for too long',
        });
        await notifications.recordChange(actor?.user ?? null, 'delete', row.id, `“${row.title}”`);
        all.push(row.original_key, row.display_key, row.thumb_key);
        // A new upload not yet copied into place: its staging object goes too.
        if (row.staged_key !== null) all.push(row.staged_key);
        if (row.share_copy_key !== null) all.push(row.share_copy_key);
      }
      await deletions.queue(all, now);
      return { keys: all, count: deleted.size };
    });
    await deleteObjects(keys);
    return count;
  }

  const presignWebp = (key: string, signingDate: Date) =>
    storage.presignGet({ key, ttlSeconds: URL_TTL_SECONDS, contentType: 'image/webp', signingDate });

  async function cardsFor(
    rows: CardRow[],
    order: ImageOrder = 'uploaded',
    size = PAGE_SIZE,
  ): Promise<GalleryPageResult> {
    const page = rows.slice(0, size);
    const last = page.at(-1);
    const sortOf = (row: CardRow) => (order === 'taken' ? row.taken_sort : row.created_at);
    const cursorOf = (row: CardRow) => writeCursor(imageCursor, { order, sort: sortOf(row), id: row.id });
    const date = signingDate();
    const cards = await Promise.all(
      page.map(async (row) => ({
        id: row.id,
        title: row.title,
        width: row.width,
        height: row.height,
        state: row.state,
        failure: row.failure,
        placeholder: row.placeholder,
        sortAt: sortOf(row),
        ...(isImageType(row.content_type)
          ? {
              thumbUrl: row.state === 'ready' ? await presignWebp(row.thumb_key, date) : null,
              display:
                row.state === 'ready'
                  ? { url: await presignWebp(row.display_key, date), ...displaySize(row.width, row.height) }
                  : null,
              file: null,
            }
          : {
              thumbUrl: null,
              display: null,
              file: { label: fileTypeLabel(row.content_type, row.original_name), bytes: row.bytes },
            }),
      })),
    );
    return {
      cards,
      nextCursor: rows.length > size && last ? cursorOf(last) : null,
      lastCursor: last ? cursorOf(last) : null,
      order,
    };
  }

  /**
   * A page of cards in the order asked. A page rebuilt `upto` a card reads up to UPTO_MAX cards
   * from the newest and stops after that card (or where it was, if it is gone since).
   */
  async function galleryPage(
    list: (query: Parameters<typeof images.listShared>[0]) => Promise<CardRow[]>,
    query: GalleryQuery,
  ): Promise<GalleryPageResult> {
    const order = query.after?.order ?? query.upto?.order ?? query.order;
    const words = query.search ? searchWords(query.search) : [];
    const after = position(query.after ?? null);
    const upto = query.after ? null : position(query.upto ?? null);
    if (!upto) return cardsFor(await list({ order, after, words, limit: PAGE_SIZE + 1 }), order);
    const rows = await list({ order, after: null, words, limit: UPTO_MAX + 1 });
    const sortOf = (row: CardRow) => (order === 'taken' ? row.taken_sort : row.created_at);
    // Newest first: a row comes before `upto` (or is it) when its (sort, id) is not below it.
    const reached = rows.filter((r) => sortOf(r) > upto.sort || (sortOf(r) === upto.sort && r.id >= upto.id));
    const size = Math.min(Math.max(reached.length, PAGE_SIZE), UPTO_MAX);
    return cardsFor(rows, order, size);
  }

  /**
   * Deletes in the bucket after the rows are gone. Keys are queued in the same transaction, so a
   * failed delete is retried by reconcile instead of leaving an orphan. Never inside a transaction:
   * a transaction may run again, and a bucket call cannot be taken back.
   */
  async function deleteObjects(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      const { failed } = await storage.deleteMany(keys);
      const failedSet = new Set(failed);
      for (const key of keys) {
        if (failedSet.has(key)) await deletions.recordFailure(key, 'delete failed');
        else await deletions.dequeue(key);
      }
    } catch (err) {
      for (const key of keys) await deletions.recordFailure(key, String(err).slice(0, 500));
    }
  }

  /** Takes the listed images out of the trash (any the actor may not change refuses them all). */
  async function restore(actor: Actor, ids: string[]): Promise<number> {
    const allowed = await getAllForChange(actor.user, [...new Set(ids)], 'any');
    return database.transaction(async () => {
      const restored = await images.restoreFromTrash(allowed.map((i) => i.id));
      for (const image of allowed.filter((i) => restored.has(i.id))) {
        await audit.change(actor, 'restore', { target: image.id });
      }
      return restored.size;
    });
  }

  /** Deletes for good the listed images in the trash the actor may change (others refuse them all). */
  async function deleteForever(actor: Actor, ids: string[]): Promise<number> {
    const allowed = await getAllForChange(actor.user, [...new Set(ids)], 'any');
    return destroy(
      actor,
      allowed.map((i) => i.id),
    );
  }

  const position = (at: ImageCursor | null): ImagePosition | null =>
    at ? { sort: at.sort, id: at.id } : null;

  return {
    getForUser,
    getForChange,
    getAllForChange,
    deleteObjects,
    /** For callers that queue inside their own transaction and delete after it commits. */
    queueDeletion: (keys: readonly string[]) => deletions.queue(keys, clock()),

    /** Deletes objects no row refers to, queued first so a failure is retried by reconcile. */
    async discardObjects(keys: string[]): Promise<void> {
      const now = clock();
      await deletions.queue(keys, now);
      await deleteObjects(keys);
    },

    /** A page of the owner's gallery, newest first in the order asked (and matching the search). */
    listPage: (ownerId: string, query: GalleryQuery): Promise<GalleryPageResult> =>
      galleryPage((q) => images.listPage(ownerId, q), query),

    /**
     * A page of cards another listing reads in the gallery's order (an album's): `read` gets the
     * position after which to start and how many rows to read.
     */
    async listPageOf(
      read: (after: ImagePosition | null, limit: number) => Promise<CardRow[]>,
      after: ImageCursor | null,
    ): Promise<{ cards: GalleryCard[]; nextCursor: string | null }> {
      return cardsFor(await read(position(after), PAGE_SIZE + 1));
    },

    /** One image's card (a processing card asks for it again until the image is ready). */
    async card(user: User, id: string): Promise<GalleryCard> {
      const row = await images.get(id);
      if (!row || !maySee(user, rowToImage(row))) throw new NotFound('There is no such image.');
      const { cards } = await cardsFor([row]);
      return cards[0] as GalleryCard;
    },

    /**
     * The images before and after this one (which the user may see) in the grid its page goes back
     * to, in that grid's order: the owner's gallery for the owner and for admins, the shared images
     * for everyone else.
     */
    async neighbours(user: User, image: Image, order: ImageOrder): Promise<Neighbours> {
      const at = {
        sort: order === 'taken' ? (image.takenAt ?? image.createdAt) : image.createdAt,
        id: image.id,
      };
      const found =
        image.ownerId === user.id || can(user, 'admin')
          ? await images.neighboursInGallery(image.ownerId, at, order)
          : await images.neighboursInShared(at, order);
      return { previous: found.newer, next: found.older };
    },

    /** Images their owners made visible to every signed-in user, newest first in the order asked. */
    listShared: (query: GalleryQuery): Promise<GalleryPageResult> => galleryPage(images.listShared, query),

    async setShared(actor: Actor, id: string, isShared: boolean): Promise<Image> {
      const image = await getForChange(actor.user, id);
      await database.transaction(async () => {
        await images.setShared(image.id, isShared);
        await audit.change(actor, 'visibility', {
          target: image.id,
          detail: isShared ? 'shown to all' : 'private',
        });
      });
      return { ...image, isShared };
    },

    /** Images being processed and images whose processing failed, everyone's. */
    unreadyCounts: () => images.unreadyCounts(),

    /** The latest images whose processing failed, everyone's (the admin console). */
    async listFailed(limit: number): Promise<Image[]> {
      return (await images.listFailed(limit)).map(rowToImage);
    },

    usage: (ownerId: string): Promise<{ images: number; bytes: number }> => images.usage(ownerId),

    /** Whether an image's original, display or thumbnail is this key. */
    usesKey: (key: string): Promise<boolean> => images.usesKey(key),

    /** A thumbnail's URL, signed as the gallery's cards are (an album's cover). */
    thumbUrl: (thumbKey: string): Promise<string> =>
      storage.presignGet({
        key: thumbKey,
        ttlSeconds: URL_TTL_SECONDS,
        contentType: 'image/webp',
        signingDate: signingDate(),
      }),

    /** null until the image is ready (its display copy is made in the background), and for any other file. */
    async displayUrl(image: Image): Promise<string | null> {
      if (image.state !== 'ready' || !isImageType(image.contentType)) return null;
      return storage.presignGet({
        key: image.displayKey,
        ttlSeconds: URL_TTL_SECONDS,
        contentType: 'image/webp',
        signingDate: signingDate(),
      });
    },

    /** A short-lived link that makes the browser save the original under its own name; audited. */
    async downloadUrl(actor: Actor, id: string): Promise<string> {
      const image = await getForUser(actor.user, id);
      // A new upload's original is copied into place just after its upload is answered: a download
      // asked for meanwhile waits for that copy, when this process is making it.
      if (!image.isStored) await deps.originalSettled?.(image.id);
      if (!image.isStored && (await images.get(image.id))?.staged_key !== null) {
        throw new Conflict(
          image.state === 'failed'
            ? 'This image’s original could not be stored yet. Press “Try again” on its page.'
            : 'This image’s original is still being stored. Please try again in a moment.',
        );
      }
      // A failed image may have none (its upload was replaced before it was stored): asked, not guessed.
      if (image.state === 'failed' && !(await fromStorage(storage.head(image.originalKey)))) {
        throw new NotFound('This image’s original file is not in the bucket.');
      }
      const url = await storage.presignGet({
        key: image.originalKey,
        ttlSeconds: 5 * 60,
        download: downloadName(image),
        contentType: image.contentType,
      });
      await database.transaction(() => audit.change(actor, 'download', { target: image.id }));
      return url;
    },

    async rename(actor: Actor, id: string, title: string): Promise<Image> {
      const image = await getForChange(actor.user, id);
      const clean = cleanText(title, TITLE_MAX);
      if (!clean) throw new Invalid('Give the image a title.');
      await database.transaction(async () => {
        await images.rename(image.id, clean, clock());
        await audit.change(actor, 'rename', { target: image.id, detail: clean });
      });
      return { ...image, title: clean };
    },

    /**
     * Moves every listed image the actor may delete to the trash (any other refuses them all), as of
     * one time (`at`: what "Undo" names); returns how many went there. Each gets its own audit row,
     * once however often it was listed; one already there stays as it was.
     */
    async trash(actor: Actor, ids: string[]): Promise<{ count: number; at: number }> {
      const allowed = await getAllForChange(actor.user, [...new Set(ids)], 'any');
      return database.transaction(async () => {
        const at = clock();
        const moved = await images.moveToTrash(
          allowed.map((i) => i.id),
          at,
        );
        for (const image of allowed.filter((i) => moved.has(i.id))) {
          await audit.change(actor, 'trash', { target: image.id });
        }
        return { count: moved.size, at };
      });
    },

    restore,

    /**
     * Moves an image whose original was deleted from the bucket outside the app to the trash,
     * unless it is there already; audited and announced as an outside change. True when it moved.
     */
    async trashMissing(id: string): Promise<boolean> {
      return database.transaction(async () => {
        const row = await images.get(id);
        if (!row || row.trashed_at !== null) return false;
        if ((await images.moveToTrash([id], clock())).size === 0) return false;
        await audit.change(null, 'outside_delete', {
          target: id,
          detail: 'its original was deleted from the bucket',
        });
        await notifications.recordChange(null, 'outside_delete', id, `“${row.title}”`);
        return true;
      });
    },

    /** "Undo": restores the owner's images that one press of Delete moved to the trash at `at`. */
    async undoTrash(actor: Actor, ownerId: string, at: number): Promise<number> {
      // Asked of the owner only: nobody else learns whether someone deleted anything at `at`.
      if (actor.user.id !== ownerId && !can(actor.user, 'admin'))
        throw new NotFound('There is no such user.');
      return restore(actor, await images.trashedAt(ownerId, at));
    },

    /** The owner's trash, the latest moved there first (at most TRASH_PAGE), as cards. */
    async trashOf(user: User, owner: User): Promise<TrashPage> {
      if (user.id !== owner.id && !can(user, 'admin')) throw new NotFound('There is no such user.');
      const [rows, usage] = await Promise.all([images.trashOf(owner.id, TRASH_PAGE), images.usage(owner.id)]);
      const { cards } = await cardsFor(rows, 'uploaded', TRASH_PAGE);
      return {
        items: cards.map((card, i) => ({ card, trashedAt: rows[i]?.trashed_at ?? 0 })),
        total: usage.trashed,
      };
    },

    deleteForever,

    /** Empties the owner's trash for good; returns how many images went. */
    async emptyTrash(actor: Actor, ownerId: string): Promise<number> {
      if (actor.user.id !== ownerId && !can(actor.user, 'admin'))
        throw new NotFound('There is no such user.');
      // What is in the trash now: an image deleted after the press (another tab) is not emptied with it.
      const before = clock() + 1;
      let count = 0;
      for (;;) {
        const rows = (await images.trashOf(ownerId, TRASH_PAGE)).filter((r) => (r.trashed_at ?? 0) < before);
        if (rows.length === 0) return count;
        const gone = await destroy(
          actor,
          rows.map((r) => r.id),
          before,
        );
        count += gone;
        if (gone === 0) return count; // restored meanwhile, or another press emptied it: done
      }
    },

    /**
     * Deletes for good what has been in the trash for `days` days, in batches; returns how many went.
     * Instances may purge at once: a row only one of them deletes is only counted (and audited) once.
     */
    async purgeTrash(days: number, isStopping: () => boolean = () => false): Promise<number> {
      const before = clock() - days * DAY_MS;
      let count = 0;
      for (;;) {
        const rows = await images.trashedBefore(before, TRASH_PAGE);
        if (rows.length === 0 || isStopping()) return count;
        const gone = await destroy(
          null,
          rows.map((r) => r.id),
          before,
        );
        count += gone;
        if (rows.length < TRASH_PAGE) return count;
      }
    },
  };
}

export type Images = ReturnType<typeof createImages>;

/**
 * Strips control characters, line separators and invisible format characters (Unicode Cf: bidi
 * overrides and isolates, zero-width spaces, BOM, soft hyphen) and surrounding space, and caps the
 * length in characters. Kept: a joiner (U+200C/U+200D) between two visible characters, which emoji
 * sequences (👩‍💻) and Persian or Indic spelling need, and the tag characters of a flag (🏴󠁧󠁢󠁳󠁣󠁴󠁿).
 */
export function cleanText(input: string, max: number): string {
  const visible = input.replace(
    /((?:[\p{L}\p{M}\p{Extended_Pictographic}\p{Emoji_Modifier}]|\uFE0F)(?:\u200C|\u200D)(?=[\p{L}\p{Extended_Pictographic}]))|(\u{1F3F4}[\u{E0020}-\u{E007E}]+\u{E007F})|[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu,
    (_, joined?: string, flag?: string) => joined ?? flag ?? '',
  );
  const chars = [...visible.trim()];
  if (chars.length <= max) return chars.join('');
  // A cut through an emoji sequence or a flag must not leave its invisible half at the end.
  return chars
    .slice(0, max)
    .join('')
    .replace(/(?:\u200C|\u200D|[\u{E0020}-\u{E007E}])+$/u, '');
}

export const withoutExtension = (name: string) => name.replace(/\.[A-Za-z0-9]{1,5}$/, '');

/** The name the browser saves a download under: the original name, with the real type's extension. */
export function downloadName(image: Pick<Image, 'originalName' | 'title' | 'contentType'>): string {
  const ext = ACCEPTED_TYPES.get(image.contentType)?.extension;
  // Any other file (ACCEPT=any) keeps the name it came with: its type is not ours to name.
  if (!ext) return (image.originalName || image.title || 'file').replace(/[\\/]/g, '_');
  const base = withoutExtension(image.originalName || image.title || 'image');
  return `${base.replace(/[\\/]/g, '_')}.${ext}`;
}
