import { randomUUID } from 'node:crypto';
import type { Db } from '../db/connection.js';
import type { Storage } from '../storage/s3.js';
import type { Clock } from './clock.js';
import { fromStorage, UserError } from './errors.js';
import { cleanText, type ImageRow, type Images, rowToImage, withoutExtension } from './images.js';
import type { Notifications } from './notifications.js';
import { makeRenditions, SNIFF_BYTES, sniffImageType } from './thumbnails.js';
import type { User, Users } from './users.js';

export const POLICY_TTL_SECONDS = 15 * 60;
/** Pending uploads a user may hold open at once; more means a script, not a person. */
const MAX_OPEN_UPLOADS = 100;
const NAME_MAX = 255;
export const NOT_AN_IMAGE = 'That file is not a JPEG, PNG, GIF, WebP or AVIF image, so it was not kept.';

export interface PresignedUpload {
  key: string;
  url: string;
  fields: Record<string, string>;
}

interface PendingRow {
  key: string;
  owner_id: string;
  original_name: string;
  replaces_image_id: string | null;
  created_at: number;
  expires_at: number;
}

export interface Completion {
  imageId: string;
  replaced: boolean;
  /** true when an earlier call already completed this key (the redirect GET may repeat) */
  isRepeat: boolean;
}

export const originalsPrefix = (userId: string) => `users/${userId}/originals/`;

export function createUploads(
  db: Db,
  storage: Storage,
  images: Images,
  users: Users,
  notifications: Notifications,
  clock: Clock,
  opts: { maxUploadBytes: number; appOrigin: string },
) {
  const insertPending = db.prepare(
    `INSERT INTO pending_uploads (key, owner_id, original_name, replaces_image_id, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const countOpen = db
    .prepare('SELECT count(*) FROM pending_uploads WHERE owner_id = ? AND expires_at > ?')
    .pluck();
  const pendingByKey = db.prepare('SELECT * FROM pending_uploads WHERE key = ?');
  const removePending = db.prepare('DELETE FROM pending_uploads WHERE key = ?');
  const imageByOriginal = db.prepare('SELECT * FROM images WHERE original_key = ?');
  const imageById = db.prepare('SELECT * FROM images WHERE id = ?');
  const insertImage = db.prepare(
    `INSERT INTO images (id, owner_id, title, original_name, original_key, display_key, thumb_key, content_type,
       bytes, width, height, taken_at, created_at, updated_at)
     VALUES (@id, @owner_id, @title, @original_name, @original_key, @display_key, @thumb_key, @content_type,
       @bytes, @width, @height, @taken_at, @created_at, @updated_at)`,
  );
  const replaceImage = db.prepare(
    `UPDATE images SET original_name = @original_name, original_key = @original_key, display_key = @display_key,
       thumb_key = @thumb_key, content_type = @content_type, bytes = @bytes, width = @width, height = @height,
       taken_at = @taken_at, updated_at = @updated_at
     WHERE id = @id`,
  );

  /**
   * Bytes the user may still upload under their quota; throws when nothing is left. A replacement
   * frees the bytes of the file it replaces, and does not add to the image count.
   */
  function roomLeft(user: User, replacingBytes: number | null): number {
    const fresh = users.get(user.id) ?? user;
    const used = images.usage(user.id);
    if (replacingBytes === null && fresh.quotaImages !== null && used.images >= fresh.quotaImages) {
      throw new UserError(
        403,
        `You have reached your limit of ${fresh.quotaImages} images. Delete some, or ask an admin for more.`,
      );
    }
    if (fresh.quotaBytes === null) return Number.POSITIVE_INFINITY;
    const left = fresh.quotaBytes - used.bytes + (replacingBytes ?? 0);
    if (left <= 0) {
      throw new UserError(
        403,
        'Your storage quota is used up. Delete some images, or ask an admin for more.',
      );
    }
    return left;
  }

  /** Refuses the upload: the object and the pending row both go, so nothing half-made stays. */
  async function discard(key: string, message: string, status: 413 | 415 = 415): Promise<never> {
    removePending.run(key);
    await images.discardObjects([key]);
    throw new UserError(status, message);
  }

  return {
    /** A POST policy for one file under the user's own prefix, and the pending row that remembers it. */
    async presign(
      user: User,
      opts2: { originalName?: string; replacesImageId?: string; mode: 'redirect' | 'status' },
    ): Promise<PresignedUpload> {
      const replaced = opts2.replacesImageId ? images.getForChange(user, opts2.replacesImageId) : null;
      if (user.role === 'viewer') throw new UserError(403, 'Viewers cannot upload images.');
      const maxBytes = Math.min(opts.maxUploadBytes, roomLeft(user, replaced?.bytes ?? null));
      const now = clock();
      if ((countOpen.get(user.id, now) as number) >= MAX_OPEN_UPLOADS) {
        throw new UserError(
          429,
          'Too many uploads are waiting to finish. Wait a few minutes and try again.',
          60,
        );
      }
      const key = `${originalsPrefix(user.id)}${randomUUID()}`;
      const post = await fromStorage(
        storage.presignPost({
          key,
          maxBytes,
          contentTypePrefix: 'image/',
          ttlSeconds: POLICY_TTL_SECONDS,
          ...(opts2.mode === 'redirect'
            ? { redirect: `${opts.appOrigin}/uploads/complete` }
            : { status: 201 as const }),
        }),
      );
      insertPending.run(
        key,
        user.id,
        cleanText(opts2.originalName ?? '', NAME_MAX),
        opts2.replacesImageId ?? null,
        now,
        now + POLICY_TTL_SECONDS * 1000,
      );
      return { key, ...post };
    },

    /**
     * Turns an uploaded object into an image. Safe to call twice (the redirect GET may repeat):
     * a key that was already completed answers with its image.
     */
    async complete(user: User, key: string, opts3: { outside?: boolean } = {}): Promise<Completion> {
      const pending = pendingByKey.get(key) as PendingRow | undefined;
      if (!pending) {
        const done = imageByOriginal.get(key) as ImageRow | undefined;
        if (done && done.owner_id === user.id) return { imageId: done.id, replaced: false, isRepeat: true };
        throw new UserError(404, 'That upload was not found. It may have expired: please upload again.');
      }
      if (pending.owner_id !== user.id) {
        throw new UserError(404, 'That upload was not found. It may have expired: please upload again.');
      }
      if (user.role === 'viewer') throw new UserError(403, 'Viewers cannot upload images.');
      const head = await fromStorage(storage.head(key));
      if (!head) throw new UserError(400, 'The file has not arrived in storage. Please upload it again.');
      if (head.size > opts.maxUploadBytes)
        return discard(key, 'That file is larger than the upload limit.', 413);
      if (head.size === 0) return discard(key, NOT_AN_IMAGE);
      // Several policies signed at once each fit the quota alone; the total is checked here.
      const replacing = pending.replaces_image_id
        ? (imageById.get(pending.replaces_image_id) as ImageRow | undefined)
        : undefined;
      try {
        if (head.size > roomLeft(user, replacing?.bytes ?? null)) throw new UserError(413, '');
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        return discard(key, 'That file would go over your storage or image quota, so it was not kept.', 413);
      }

      const start = await fromStorage(storage.getRange(key, 0, Math.min(head.size, SNIFF_BYTES) - 1));
      const contentType = await sniffImageType(start);
      if (!contentType) return discard(key, NOT_AN_IMAGE);

      const original = Buffer.from(await fromStorage(storage.getRange(key, 0, head.size - 1)));
      let renditions: Awaited<ReturnType<typeof makeRenditions>>;
      try {
        renditions = await makeRenditions(original);
      } catch {
        return discard(key, 'That image could not be read: it may be damaged, or too large in pixels.', 415);
      }
      const base = `users/${user.id}/`;
      const version = randomUUID();
      const thumbKey = `${base}thumbs/${version}.webp`;
      const displayKey = `${base}display/${version}.webp`;
      await fromStorage(
        Promise.all([
          storage.put(thumbKey, renditions.thumb, 'image/webp'),
          storage.put(displayKey, renditions.display, 'image/webp'),
        ]),
      );

      const now = clock();
      const fields = {
        original_name: pending.original_name,
        original_key: key,
        display_key: displayKey,
        thumb_key: thumbKey,
        content_type: contentType,
        bytes: head.size,
        width: renditions.width,
        height: renditions.height,
        taken_at: renditions.takenAt,
        updated_at: now,
      };
      const outcome = db
        .transaction((): { imageId: string; replaced: boolean; oldKeys: string[] } | null => {
          // Whoever deletes the pending row first owns the completion; a racing second call backs off.
          if (removePending.run(key).changes === 0) return null;
          const target = pending.replaces_image_id
            ? (imageById.get(pending.replaces_image_id) as ImageRow | undefined)
            : undefined;
          if (target) {
            replaceImage.run({ ...fields, id: target.id });
            const old = rowToImage(target);
            const oldKeys = [old.originalKey, old.displayKey, old.thumbKey];
            for (const k of oldKeys) images.queueDeletion(k);
            notifications.recordChange(user, 'replace', target.id, `“${target.title}”`);
            return { imageId: target.id, replaced: true, oldKeys };
          }
          const imageId = randomUUID().replaceAll('-', '');
          const title = cleanText(withoutExtension(pending.original_name), 200) || 'Untitled';
          insertImage.run({ ...fields, id: imageId, owner_id: user.id, title, created_at: now });
          notifications.recordChange(
            user,
            opts3.outside ? 'outside_upload' : 'upload',
            imageId,
            `“${title}”`,
          );
          return { imageId, replaced: false, oldKeys: [] };
        })
        .immediate();

      if (!outcome) {
        await images.discardObjects([thumbKey, displayKey]);
        const done = imageByOriginal.get(key) as ImageRow | undefined;
        if (!done) {
          // The image this replaced was deleted meanwhile: the new file belongs to nothing.
          await images.discardObjects([key]);
          throw new UserError(404, 'That image was deleted while the new file was uploading.');
        }
        return { imageId: done.id, replaced: false, isRepeat: true };
      }
      await images.deleteObjects(outcome.oldKeys);
      return { imageId: outcome.imageId, replaced: outcome.replaced, isRepeat: false };
    },
  };
}

export type Uploads = ReturnType<typeof createUploads>;
