import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AppDb } from '../db/database.js';
import { imagesRepository } from '../db/repositories/images.js';
import { ACCEPTED_TYPES } from '../image-types.js';
import { behindRequests } from '../jobs/thread-priority.js';
import type { Storage } from '../storage/storage.js';
import { Conflict, fromStorage, NotFound } from './errors.js';
import type { Image, Images } from './images.js';
import { makeShareCopy, shareCopyType } from './thumbnails.js';

/** Temp dirs of copies being made start so; the workers remove those a killed process left. */
export const SHARE_COPY_TEMP_PREFIX = 's3g-share-copy-';

/**
 * The full-size copies without location that share links give for download (unless they give the
 * original): made on the first download of each image, kept at the key its row names, and
 * deleted with the file they were made from (a replacement, a delete for good). Made once per
 * image in this process however many visitors ask at once; two instances may both make one, and
 * the one recorded first is kept.
 */
export function createShareCopies(deps: { database: AppDb; storage: Storage; images: Images }) {
  const { database, storage, images } = deps;
  const rows = imagesRepository(database);
  const making = new Map<string, Promise<string>>();

  async function make(image: Image): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), SHARE_COPY_TEMP_PREFIX));
    try {
      const file = path.join(dir, 'original');
      // A missing file is said so; anything else the bucket says is the bucket's trouble (503).
      const body = await fromStorage(
        storage.getStream(image.originalKey).catch(async (err: unknown) => {
          if (await storage.head(image.originalKey)) throw err;
          throw new NotFound('This picture’s file is not in the bucket.');
        }),
      );
      await pipeline(body, createWriteStream(file));
      const bytes = await behindRequests(() => makeShareCopy(file, image.contentType)).catch(() => {
        throw new Conflict('A copy of this picture could not be made.');
      });
      const type = shareCopyType(image.contentType);
      const ext = ACCEPTED_TYPES.get(type)?.extension ?? 'jpg';
      const key = `users/${image.ownerId}/copies/${image.id}/${randomUUID()}.${ext}`;
      // A crash before the row names it leaves an object no row names: reconcile removes those.
      await fromStorage(storage.put(key, bytes, type));
      if (await rows.setShareCopy(image.id, image.originalKey, key)) return key;
      // Another instance recorded one first, or the file was replaced meanwhile: this one goes.
      await images.deleteObjects([key]);
      const now = await rows.get(image.id);
      if (now?.share_copy_key && now.original_key === image.originalKey) return now.share_copy_key;
      throw new NotFound('This picture changed while its copy was made: open the link again.');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    /** The key of the image's share copy, made now if it has none. */
    async keyOf(image: Image): Promise<string> {
      const row = await rows.get(image.id);
      if (row?.share_copy_key) return row.share_copy_key;
      let pending = making.get(image.id);
      if (!pending) {
        pending = make(image).finally(() => making.delete(image.id));
        making.set(image.id, pending);
      }
      return pending;
    },
  };
}

export type ShareCopies = ReturnType<typeof createShareCopies>;
