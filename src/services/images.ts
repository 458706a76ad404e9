import type { AppDb } from '../db/database.js';
import {
  type CardRow,
  type Image,
  type ImagePosition,
  imagesRepository,
  rowToImage,
} from '../db/repositories/images.js';
import { storageDeletionsRepository } from '../db/repositories/storage-deletions.js';
import type { ImageState } from '../db/schema.js';
import { ACCEPTED_TYPES } from '../image-types.js';
import { TITLE_MAX } from '../limits.js';
import { can } from '../policy.js';
import type { Storage } from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import { type ImageCursor, imageCursor, writeCursor } from './cursors.js';
import { Forbidden, Invalid, NotFound } from './errors.js';
import type { Notifications } from './notifications.js';
import type { PendingUploads } from './pending-uploads.js';
import type { User } from './users.js';

export { type Image, type ImageRow, rowToImage } from '../db/repositories/images.js';

const PAGE_SIZE = 60;

const URL_TTL_SECONDS = 2 * 60 * 60;
const HOUR_MS = 60 * 60 * 1000;

export interface GalleryCard {
  id: string;
  title: string;
  width: number;
  height: number;
  /** null until the image is ready (its thumbnail is made in the background) */
  thumbUrl: string | null;
  /** the 1600 px display copy: null until ready, like thumbUrl */
  displayUrl: string | null;
  state: ImageState;
  failure: string | null;
  placeholder: string | null;
}

export function createImages(deps: {
  database: AppDb;
  storage: Storage;
  clock: Clock;
  audit: Audit;
  notifications: Notifications;
  pending: PendingUploads;
}) {
  const { database, storage, clock, audit, notifications, pending } = deps;
  const images = imagesRepository(database);
  const deletions = storageDeletionsRepository(database);

  /** URLs signed at the top of the hour repeat for an hour, so browsers cache thumbnails. */
  const signingDate = () => new Date(Math.floor(clock() / HOUR_MS) * HOUR_MS);

  /** The checks of getForUser and getForChange, on an image already loaded (or not found). */
  function mayChange(user: User, image: Image | null): Image {
    if (!image || !can(user, 'image.view', image)) throw new NotFound('There is no such image.');
    if (!can(user, 'image.change')) throw new Forbidden('Viewers cannot change images.');
    if (!can(user, 'image.change', image)) throw new Forbidden('Only the owner of this image can change it.');
    return image;
  }

  /** Loads an image the user may act on; anything else is "not found", so ids reveal nothing. */
  async function getForUser(user: User, id: string): Promise<Image> {
    const row = await images.get(id);
    const image = row ? rowToImage(row) : null;
    if (!image || !can(user, 'image.view', image)) throw new NotFound('There is no such image.');
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
  async function getAllForChange(user: User, ids: readonly string[]): Promise<Image[]> {
    const rows = await images.getMany([...new Set(ids)]);
    const byId = new Map(rows.map((row) => [row.id, rowToImage(row)]));
    return ids.map((id) => mayChange(user, byId.get(id) ?? null));
  }

  async function cardsFor(rows: CardRow[]): Promise<{ cards: GalleryCard[]; nextCursor: string | null }> {
    const page = rows.slice(0, PAGE_SIZE);
    const last = page.at(-1);
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
        thumbUrl:
          row.state === 'ready'
            ? await storage.presignGet({
                key: row.thumb_key,
                ttlSeconds: URL_TTL_SECONDS,
                contentType: 'image/webp',
                signingDate: date,
              })
            : null,
        displayUrl:
          row.state === 'ready'
            ? await storage.presignGet({
                key: row.display_key,
                ttlSeconds: URL_TTL_SECONDS,
                contentType: 'image/webp',
                signingDate: date,
              })
            : null,
      })),
    );
    return {
      cards,
      nextCursor:
        rows.length > PAGE_SIZE && last
          ? writeCursor(imageCursor, { createdAt: last.created_at, id: last.id })
          : null,
    };
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

  const position = (after: ImageCursor | null): ImagePosition | null =>
    after ? { createdAt: after.createdAt, id: after.id } : null;

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

    async listPage(
      ownerId: string,
      after: ImageCursor | null,
    ): Promise<{ cards: GalleryCard[]; nextCursor: string | null }> {
      return cardsFor(await images.listPage(ownerId, position(after), PAGE_SIZE + 1));
    },

    /** One image's card (a processing card asks for it again until the image is ready). */
    async card(user: User, id: string): Promise<GalleryCard> {
      const row = await images.get(id);
      if (!row || !can(user, 'image.view', rowToImage(row))) throw new NotFound('There is no such image.');
      const { cards } = await cardsFor([row]);
      return cards[0] as GalleryCard;
    },

    /** Images their owners made visible to every signed-in user, newest first. */
    async listShared(
      after: ImageCursor | null,
    ): Promise<{ cards: GalleryCard[]; nextCursor: string | null }> {
      return cardsFor(await images.listShared(position(after), PAGE_SIZE + 1));
    },

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

    /** null until the image is ready: its display copy is made in the background. */
    async displayUrl(image: Image): Promise<string | null> {
      if (image.state !== 'ready') return null;
      return storage.presignGet({
        key: image.displayKey,
        ttlSeconds: URL_TTL_SECONDS,
        contentType: 'image/webp',
        signingDate: signingDate(),
      });
    },

    /** A short-lived link that makes the browser save the original under its own name. */
    async downloadUrl(user: User, id: string): Promise<string> {
      const image = await getForUser(user, id);
      return storage.presignGet({
        key: image.originalKey,
        ttlSeconds: 5 * 60,
        download: downloadName(image),
        contentType: image.contentType,
      });
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
     * Deletes every listed image the actor may delete (any other refuses them all); returns how many
     * went. Each image deleted gets its own audit row, once however often it was listed.
     */
    async delete(actor: Actor, ids: string[]): Promise<number> {
      const { user } = actor;
      const allowed = await getAllForChange(user, [...new Set(ids)]);
      // Rows are read again inside the transaction: a replace that committed meanwhile changed the keys.
      // Set-based, so five hundred images cost a few statements, not thousands, in the transaction.
      const { keys, count } = await database.transaction(async () => {
        const now = clock();
        const found = new Map((await images.getMany(allowed.map((i) => i.id))).map((row) => [row.id, row]));
        const rows = allowed.flatMap(({ id }) => found.get(id) ?? []);
        const ids = rows.map((row) => row.id);
        // Replacements still uploading end with them: their files go now, what their policies
        // may still write goes when the sweep removes their rows.
        const all = await pending.closeReplacementsOf(ids, now);
        const deleted = await images.deleteByIds(ids);
        for (const row of rows.filter((r) => deleted.has(r.id))) {
          await audit.change(actor, 'delete', { target: row.id });
          await notifications.recordChange(user, 'delete', row.id, `“${row.title}”`);
          all.push(row.original_key, row.display_key, row.thumb_key);
        }
        await deletions.queue(all, now);
        return { keys: all, count: deleted.size };
      });
      await deleteObjects(keys);
      return count;
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
  const ext = ACCEPTED_TYPES.get(image.contentType)?.extension ?? 'bin';
  const base = withoutExtension(image.originalName || image.title || 'image');
  return `${base.replace(/[\\/]/g, '_')}.${ext}`;
}
