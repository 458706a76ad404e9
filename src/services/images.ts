import type { Selectable } from 'kysely';
import type { Db } from '../db/connection.js';
import type { AppDb } from '../db/database.js';
import type { Database } from '../db/schema.js';
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

const PAGE_SIZE = 60;

const URL_TTL_SECONDS = 2 * 60 * 60;
const HOUR_MS = 60 * 60 * 1000;

export interface Image {
  id: string;
  ownerId: string;
  title: string;
  originalName: string;
  originalKey: string;
  displayKey: string;
  thumbKey: string;
  contentType: string;
  bytes: number;
  width: number;
  height: number;
  takenAt: number | null;
  createdAt: number;
  updatedAt: number;
  /** visible to every signed-in user, read-only */
  isShared: boolean;
}

/** An images row as SQLite returns it (the table's shape is src/db/schema.ts). */
export type ImageRow = Selectable<Database['images']>;

export const rowToImage = (r: ImageRow): Image => ({
  id: r.id,
  ownerId: r.owner_id,
  title: r.title,
  originalName: r.original_name,
  originalKey: r.original_key,
  displayKey: r.display_key,
  thumbKey: r.thumb_key,
  contentType: r.content_type,
  bytes: r.bytes,
  width: r.width,
  height: r.height,
  takenAt: r.taken_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  isShared: r.is_shared === 1,
});

/** Only what a card shows: the gallery query reads these and nothing else, for every page view. */
const CARD_COLUMNS = 'id, title, thumb_key, width, height, created_at';
type CardRow = Pick<ImageRow, 'id' | 'title' | 'thumb_key' | 'width' | 'height' | 'created_at'>;

export interface GalleryCard {
  id: string;
  title: string;
  width: number;
  height: number;
  thumbUrl: string;
}

export function createImages(deps: {
  db: Db;
  database: AppDb;
  storage: Storage;
  clock: Clock;
  audit: Audit;
  notifications: Notifications;
  pending: PendingUploads;
}) {
  const { db, database, storage, clock, audit, notifications, pending } = deps;
  const byId = db.prepare('SELECT * FROM images WHERE id = ?');
  const firstPage = db.prepare(
    `SELECT ${CARD_COLUMNS} FROM images WHERE owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
  );
  const nextPage = db.prepare(
    `SELECT ${CARD_COLUMNS} FROM images WHERE owner_id = ? AND (created_at < ? OR (created_at = ? AND id < ?))
      ORDER BY created_at DESC, id DESC LIMIT ?`,
  );
  const rename = db.prepare('UPDATE images SET title = ?, updated_at = ? WHERE id = ?');
  const remove = db.prepare('DELETE FROM images WHERE id = ?');
  const queueDeletion = db.prepare(
    'INSERT INTO storage_deletions (key, queued_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING',
  );
  const dequeue = db.prepare('DELETE FROM storage_deletions WHERE key = ?');
  const recordFailure = db.prepare(
    'UPDATE storage_deletions SET attempts = attempts + 1, last_error = ? WHERE key = ?',
  );

  /** URLs signed at the top of the hour repeat for an hour, so browsers cache thumbnails. */
  const signingDate = () => new Date(Math.floor(clock() / HOUR_MS) * HOUR_MS);

  const sharedFirst = db.prepare(
    `SELECT ${CARD_COLUMNS} FROM images WHERE is_shared = 1 ORDER BY created_at DESC, id DESC LIMIT ?`,
  );
  const sharedNext = db.prepare(
    `SELECT ${CARD_COLUMNS} FROM images WHERE is_shared = 1 AND (created_at < ? OR (created_at = ? AND id < ?))
      ORDER BY created_at DESC, id DESC LIMIT ?`,
  );
  const setSharedStmt = db.prepare('UPDATE images SET is_shared = ? WHERE id = ?');
  const usageStmt = db.prepare(
    'SELECT count(*) AS images, coalesce(sum(bytes), 0) AS bytes FROM images WHERE owner_id = ?',
  );

  /** Loads an image the user may act on; anything else is "not found", so ids reveal nothing. */
  function getForUser(user: User, id: string): Image {
    const row = byId.get(id) as ImageRow | undefined;
    const image = row ? rowToImage(row) : null;
    if (!image || !can(user, 'image.view', image)) throw new NotFound('There is no such image.');
    return image;
  }

  /** As getForUser, then the role and ownership: a stranger's private id is NotFound for everyone. */
  function getForChange(user: User, id: string): Image {
    const image = getForUser(user, id);
    if (!can(user, 'image.change')) throw new Forbidden('Viewers cannot change images.');
    if (!can(user, 'image.change', image)) throw new Forbidden('Only the owner of this image can change it.');
    return image;
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
        thumbUrl: await storage.presignGet({
          key: row.thumb_key,
          ttlSeconds: URL_TTL_SECONDS,
          contentType: 'image/webp',
          signingDate: date,
        }),
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
   * failed delete is retried by reconcile instead of leaving an orphan.
   */
  async function deleteObjects(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      const { failed } = await storage.deleteMany(keys);
      const failedSet = new Set(failed);
      for (const key of keys) {
        if (failedSet.has(key)) recordFailure.run('delete failed', key);
        else dequeue.run(key);
      }
    } catch (err) {
      for (const key of keys) recordFailure.run(String(err).slice(0, 500), key);
    }
  }

  return {
    getForUser,
    getForChange,
    deleteObjects,
    /** For callers that queue inside their own transaction and delete after it commits. */
    queueDeletion: (key: string) => queueDeletion.run(key, clock()),

    /** Deletes objects no row refers to, queued first so a failure is retried by reconcile. */
    async discardObjects(keys: string[]): Promise<void> {
      const now = clock();
      for (const key of keys) queueDeletion.run(key, now);
      await deleteObjects(keys);
    },

    async listPage(
      ownerId: string,
      after: ImageCursor | null,
    ): Promise<{ cards: GalleryCard[]; nextCursor: string | null }> {
      const rows = (
        after
          ? nextPage.all(ownerId, after.createdAt, after.createdAt, after.id, PAGE_SIZE + 1)
          : firstPage.all(ownerId, PAGE_SIZE + 1)
      ) as CardRow[];
      return cardsFor(rows);
    },

    /** Images their owners made visible to every signed-in user, newest first. */
    async listShared(
      after: ImageCursor | null,
    ): Promise<{ cards: GalleryCard[]; nextCursor: string | null }> {
      const rows = (
        after
          ? sharedNext.all(after.createdAt, after.createdAt, after.id, PAGE_SIZE + 1)
          : sharedFirst.all(PAGE_SIZE + 1)
      ) as CardRow[];
      return cardsFor(rows);
    },

    async setShared(actor: Actor, id: string, isShared: boolean): Promise<Image> {
      const image = getForChange(actor.user, id);
      await database.transaction(async () => {
        setSharedStmt.run(isShared ? 1 : 0, image.id);
        await audit.change(actor, 'visibility', {
          target: image.id,
          detail: isShared ? 'shown to all' : 'private',
        });
      });
      return { ...image, isShared };
    },

    usage(ownerId: string): { images: number; bytes: number } {
      return usageStmt.get(ownerId) as { images: number; bytes: number };
    },

    async displayUrl(image: Image): Promise<string> {
      return storage.presignGet({
        key: image.displayKey,
        ttlSeconds: URL_TTL_SECONDS,
        contentType: 'image/webp',
        signingDate: signingDate(),
      });
    },

    /** A short-lived link that makes the browser save the original under its own name. */
    async downloadUrl(user: User, id: string): Promise<string> {
      const image = getForUser(user, id);
      return storage.presignGet({
        key: image.originalKey,
        ttlSeconds: 5 * 60,
        download: downloadName(image),
        contentType: image.contentType,
      });
    },

    async rename(actor: Actor, id: string, title: string): Promise<Image> {
      const image = getForChange(actor.user, id);
      const clean = cleanText(title, TITLE_MAX);
      if (!clean) throw new Invalid('Give the image a title.');
      const now = clock();
      await database.transaction(async () => {
        rename.run(clean, now, image.id);
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
      const allowed = [...new Set(ids)].map((id) => getForChange(user, id));
      // Rows are read again inside the transaction: a replace that committed meanwhile changed the keys.
      const now = clock();
      const { keys, count } = await database.transaction(async () => {
        const all: string[] = [];
        let n = 0;
        for (const { id } of allowed) {
          const row = byId.get(id) as ImageRow | undefined;
          if (!row) continue;
          // Replacements still uploading end with it: their files go now, what their policies
          // may still write goes when the sweep removes their rows.
          for (const key of await pending.closeReplacementsOf(id, now)) {
            queueDeletion.run(key, now);
            all.push(key);
          }
          remove.run(id);
          await audit.change(actor, 'delete', { target: id });
          await notifications.recordChange(user, 'delete', id, `“${row.title}”`);
          n++;
          for (const key of [row.original_key, row.display_key, row.thumb_key]) {
            queueDeletion.run(key, now);
            all.push(key);
          }
        }
        return { keys: all, count: n };
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
