import { createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { AppDb } from '../db/database.js';
import { imagesRepository } from '../db/repositories/images.js';
import { type JobClaim, type JobRow, jobsRepository } from '../db/repositories/jobs.js';
import { isImageType } from '../image-types.js';
import type { Images } from '../services/images.js';
import { SHARE_COPY_TEMP_PREFIX } from '../services/share-copies.js';
import { makeRenditions, PIXELS_TEMP_PREFIX, type Renditions } from '../services/thumbnails.js';
import type { Storage } from '../storage/storage.js';
import type { OriginalStore } from './original-store.js';
import { JobFailed, type JobHandler } from './queue.js';
import { behindRequests } from './thread-priority.js';

export const TEMP_PREFIX = 's3g-original-';
const STALE_TEMP_MS = 60 * 60 * 1000;
/** Errors of this machine, not of the file: the job runs again later. */
const TRANSIENT_CODES = new Set(['ENOSPC', 'EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN']);
const UNREADABLE =
  'This file could not be read as an image: it may be damaged, or use a feature we cannot decode.';
const MISSING = 'The original file is no longer in the bucket, so it cannot be processed.';
const TOO_MANY_PIXELS =
  'This image has more pixels than we decode (100 megapixels, or 50 for HEIC), so it was not processed.';

/**
 * Makes an image's thumbnail and display copy (a 'renditions' job): the original streams from the
 * bucket into a temp file (never whole in memory), sharp decodes it once, both copies go to the
 * keys the image row names, and the row becomes 'ready', in one transaction with the job's end.
 * A job whose image was replaced or deleted meanwhile ends without touching the row, and removes
 * what it wrote; a file that cannot be decoded ends 'failed' with the reason, and nothing written.
 */
export function createRenditionsHandler(deps: {
  database: AppDb;
  storage: Storage;
  images: Images;
  originals: OriginalStore;
}): JobHandler {
  const { database, storage, images, originals } = deps;
  const imageRows = imagesRepository(database);
  const jobs = jobsRepository(database);

  async function render(originalKey: string, contentType: string): Promise<Renditions> {
    const dir = await mkdtemp(path.join(tmpdir(), TEMP_PREFIX));
    try {
      const file = path.join(dir, 'original');
      const body = await storage.getStream(originalKey).catch(async (err: unknown) => {
        throw (await storage.head(originalKey)) ? err : new JobFailed(MISSING);
      });
      await pipeline(body, createWriteStream(file));
      return await behindRequests(() => makeRenditions(file, contentType)).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : '';
        const code = (err as { code?: unknown } | null)?.code;
        if (typeof code === 'string' && TRANSIENT_CODES.has(code)) throw err;
        // libvips' own writes (its pixels between steps) report a full disk in words, not codes.
        if (/out of memory|stopped while decoding|no space left|too many open files/i.test(message))
          throw err;
        throw new JobFailed(/pixel limit/i.test(message) ? TOO_MANY_PIXELS : UNREADABLE);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    /**
     * Removes temp dirs a killed process left (an original, pixels, a share copy being made; an hour
     * old: younger ones may be another process's).
     * Only this user's own directories: in a shared temp dir another user's, or a link, is left.
     */
    async prepare(log: Logger): Promise<void> {
      const cutoff = Date.now() - STALE_TEMP_MS;
      const uid = process.getuid?.();
      for (const name of await readdir(tmpdir())) {
        if (
          ![TEMP_PREFIX, PIXELS_TEMP_PREFIX, SHARE_COPY_TEMP_PREFIX].some((prefix) => name.startsWith(prefix))
        )
          continue;
        const dir = path.join(tmpdir(), name);
        const info = await lstat(dir).catch(() => null);
        if (!info?.isDirectory() || (uid !== undefined && info.uid !== uid) || info.mtimeMs >= cutoff)
          continue;
        await rm(dir, { recursive: true, force: true }).then(
          () => log.info({ dir }, 'removed a temp dir a stopped worker left'),
          (err: unknown) => log.warn({ err, dir }, 'could not remove a temp dir a stopped worker left'),
        );
      }
    },

    async run(job: JobRow, claim: JobClaim, isLost: () => boolean): Promise<string> {
      const row = await imageRows.get(job.image_id);
      if (!row || row.original_key !== job.original_key || row.state !== 'processing') {
        // Replaced, deleted, or done already: nothing left to do, but a copy of the original an
        // earlier run made before it stopped (no image names it now) goes.
        if ((await jobs.finish(claim)) && !(await images.usesKey(job.original_key))) {
          await images.discardObjects([job.original_key]);
        }
        return 'nothing to do';
      }
      // The original is copied from its upload's staging object first, if that is not done yet
      // (the completion starts it; this finishes it after a crash or a storage error). A file
      // replaced there before it was copied fails the image here.
      if (row.staged_key !== null && !(await originals.store(row))) {
        await jobs.finish(claim); // the image was deleted or replaced meanwhile
        return 'nothing to do';
      }
      const made = { originalKey: row.original_key, thumbKey: row.thumb_key, displayKey: row.display_key };
      // Any other file (kept with ACCEPT=any) has no copies to make: it is ready as it is.
      const renditions = isImageType(row.content_type)
        ? await render(row.original_key, row.content_type)
        : null;
      // Another worker has the job now (this one stalled past its lease): it writes these keys.
      if (isLost()) return 'lost';
      if (renditions) {
        await Promise.all([
          storage.put(made.thumbKey, renditions.thumb, 'image/webp'),
          storage.put(made.displayKey, renditions.display, 'image/webp'),
        ]);
      }
      const outcome = await database.transaction(async () => {
        const held = await jobs.finish(claim);
        const current = await imageRows.get(job.image_id);
        const isCurrent =
          current?.original_key === made.originalKey &&
          current.thumb_key === made.thumbKey &&
          current.display_key === made.displayKey;
        if (!isCurrent) return 'obsolete';
        // Not ours any more (our claim lapsed and another worker took the job): it writes the same
        // keys and marks the row itself.
        if (!held) return 'lost';
        await imageRows.markReady(
          row.id,
          made,
          renditions
            ? {
                width: renditions.width,
                height: renditions.height,
                taken_at: renditions.takenAt,
                exif: renditions.camera ? JSON.stringify(renditions.camera) : null,
                placeholder: renditions.placeholder,
              }
            : { width: 0, height: 0, taken_at: null, exif: null, placeholder: null },
        );
        return 'ready';
      });
      // The row names other keys now (a replacement) or is gone: what we wrote is no one's.
      if (outcome === 'obsolete' && renditions) await images.discardObjects([made.thumbKey, made.displayKey]);
      return outcome;
    },

    async giveUp(job: JobRow, claim: JobClaim, reason: string): Promise<void> {
      const row = await database.transaction(async () => {
        if (!(await jobs.finish(claim))) return undefined;
        const current = await imageRows.get(job.image_id);
        if (!current || !(await imageRows.markFailed(current.id, job.original_key, reason))) return undefined;
        return current;
      });
      // A run cut short may have written a copy: a failed image has none.
      if (row) await images.discardObjects([row.thumb_key, row.display_key]);
    },
  };
}
