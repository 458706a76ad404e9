import type { StoreChange } from '@s3-gallery/s3-store';
import type { Logger } from 'pino';
import type { AppDb } from '../db/database.js';
import { imagesRepository } from '../db/repositories/images.js';
import { storageDeletionsRepository } from '../db/repositories/storage-deletions.js';
import { bareEtag, type Storage } from '../storage/storage.js';
import type { Images } from './images.js';
import { OUTSIDE_ORIGINAL, type OutsideImports } from './outside-imports.js';
import type { PendingUploads } from './pending-uploads.js';
import type { Uploads } from './uploads.js';

/**
 * How long after a change it is looked at. The app's own writes are reported too (an upload's
 * original copied into place, a deleted image's files going): by then the database says whose
 * they are, so only what a tool did outside the app is acted on.
 */
const SETTLE_DELAY_MS = 2000;
/** Keys waiting to be looked at, at most: beyond, reconcile catches them within RECONCILE_INTERVAL. */
const MAX_WAITING = 10_000;

/**
 * The live pickup of changes made to the bucket outside the app, as the embedded store reports
 * them (`onChange`): an original put into `users/<id>/originals/` becomes that user's image within
 * seconds (as reconcile would import it), and an image whose original was deleted moves to the
 * trash; both are audited and announced to the admins as outside changes. Changes to one key are
 * looked at once, after the last of them, one key at a time; a key that fails waits for reconcile.
 */
export function createOutsideChanges(deps: {
  database: AppDb;
  storage: Storage;
  images: Images;
  imports: OutsideImports;
  uploads: Uploads;
  pending: PendingUploads;
  delayMs?: number;
}) {
  const imageRows = imagesRepository(deps.database);
  const deletions = storageDeletionsRepository(deps.database);
  const timers = new Map<string, NodeJS.Timeout>();
  let queue: Promise<void> = Promise.resolve();
  let log: Logger | undefined;
  let isStopped = false;

  /** What the key holds now, and what the database says of it. */
  async function settle(key: string): Promise<void> {
    const owner = OUTSIDE_ORIGINAL.exec(key)?.[1];
    // Stopping: what is queued is left for reconcile.
    if (!owner || isStopped) return;
    const image = await imageRows.getByOriginalKey(key);
    const object = await deps.storage.head(key);
    if (image) {
      // Still being copied into place: the copy's own change, not a tool's.
      if (image.staged_key !== null) return;
      // An image's original gone from the bucket.
      if (object === null) {
        if (image.trashed_at === null && (await deps.images.trashMissing(image.id)))
          log?.info(
            { imageId: image.id, key },
            'an image’s original was deleted outside the app: moved to the trash',
          );
        return;
      }
      // Overwritten in place: another ETag than the one the app stored.
      if (object.etag && image.original_etag !== null && bareEtag(object.etag) !== image.original_etag) {
        if (await deps.uploads.refreshOverwritten(image.id))
          log?.info(
            { imageId: image.id, key },
            'an image’s original was overwritten outside the app: processed again',
          );
      }
      return;
    }
    // The app's own: a completion's copy still being recorded, an import still being copied into
    // place (its image names the key as its staging object), or a file whose delete is queued.
    if (
      object === null ||
      (await deps.pending.names(key)) ||
      (await deps.images.usesKey(key)) ||
      (await deletions.has(key))
    )
      return;
    const done = await deps.imports.importObject(owner, key);
    if (done) log?.info({ key, outcome: done.outcome }, 'an original put into the bucket outside the app');
  }

  return {
    /** Hears of one change (the embedded store's onChange); it is looked at a moment later. */
    notice(change: StoreChange): void {
      if (isStopped || !OUTSIDE_ORIGINAL.test(change.key)) return;
      // A flood of changes (a bulk copy, or a bucket's events) waits for reconcile past this many.
      if (timers.size >= MAX_WAITING && !timers.has(change.key)) return;
      clearTimeout(timers.get(change.key));
      const timer = setTimeout(() => {
        timers.delete(change.key);
        queue = queue
          .then(() => settle(change.key))
          .catch((err: unknown) =>
            log?.warn({ err, key: change.key }, 'an outside change could not be picked up; reconcile will'),
          );
      }, deps.delayMs ?? SETTLE_DELAY_MS);
      timer.unref();
      timers.set(change.key, timer);
    },

    /** Starts logging what it picks up; the returned function stops it (what is queued is dropped). */
    start(logger: Logger): () => Promise<void> {
      log = logger;
      return async () => {
        isStopped = true;
        for (const timer of timers.values()) clearTimeout(timer);
        timers.clear();
        await queue;
      };
    },

    /** Settles once every change heard of so far has been looked at (tests). */
    async idle(): Promise<void> {
      while (timers.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      await queue;
    },
  };
}
