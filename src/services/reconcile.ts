import type { Logger } from 'pino';
import type { AppDb } from '../db/database.js';
import { imagesRepository } from '../db/repositories/images.js';
import { storageDeletionsRepository } from '../db/repositories/storage-deletions.js';
import type { Storage } from '../storage/storage.js';
import type { Clock } from './clock.js';
import { Conflict } from './errors.js';
import type { Images } from './images.js';
import { type HeldLease, JOB_LEASE_MS, type JobLeases } from './job-lease.js';
import { OUTSIDE_ORIGINAL, type OutsideImports } from './outside-imports.js';
import type { PendingUploads } from './pending-uploads.js';
import { SWEEP_JOB, type SweepReport, storageFailure, type UploadSweeper } from './upload-sweeper.js';
import type { Uploads } from './uploads.js';
import type { Users } from './users.js';

/** Objects younger than this may belong to a completion still running; they are left alone. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;

export interface ReconcileReport extends SweepReport {
  apply: boolean;
  imported: string[];
  /** originals overwritten in place outside the app (another ETag than the one recorded): processed again */
  overwritten: string[];
  /** images whose original is no longer in the bucket: moved to the trash */
  missing: string[];
  orphansDeleted: string[];
  retriedDeletes: string[];
  stillFailing: string[];
}

/**
 * Brings the database and the bucket back into agreement: runs the upload sweep (finishes uploads
 * whose browser never came back, drops expired ones, deletes what replayed policies wrote), imports
 * originals put into a user's prefix from outside the app, deletes orphaned objects and retries
 * deletes that failed. An object the bucket cannot read is skipped and reported, never fatal.
 * Dry run unless apply. Applied, it holds the upload sweep's lease throughout: its sweep and its
 * imports (pending rows due at once) touch the rows a timer's sweep would, so neither runs while
 * the other does, on any instance.
 */
export function createReconcile(deps: {
  database: AppDb;
  storage: Storage;
  users: Users;
  uploads: Uploads;
  images: Images;
  clock: Clock;
  pending: PendingUploads;
  sweeper: UploadSweeper;
  leases: JobLeases;
  imports: OutsideImports;
}) {
  const { storage } = deps;
  const deletions = storageDeletionsRepository(deps.database);
  const imageRows = imagesRepository(deps.database);
  /** Deletes still to retry, the oldest first. */
  const queued = () => deletions.list(10_000);
  /** Whether an image uses the key, or its delete is queued already. */
  const knownKey = async (key: string) => (await deps.images.usesKey(key)) || (await deletions.has(key));

  /** Completes an object found under originals/ as its owner's upload (a dry run only says so). */
  async function importOutside(ownerId: string, key: string, report: ReconcileReport): Promise<void> {
    if (!report.apply) {
      if (await deps.users.get(ownerId)) report.imported.push(key);
      return;
    }
    const done = await deps.imports.importObject(ownerId, key);
    if (done?.outcome === 'imported') report.imported.push(key);
    else if (done?.outcome === 'rejected') report.rejected.push(key);
    else if (done?.outcome === 'skipped') report.skipped.push({ key, reason: storageFailure(done.error) });
  }

  /** Stops an applied run whose lease lapsed (its process stalled): a timer's sweep may be running now. */
  function checkHeld(lease: HeldLease | null): void {
    if (lease?.isLost())
      throw new Conflict('Reconcile stopped part-way: it lost its hold on the upload sweep. Run it again.');
  }

  async function reconcile(apply: boolean, lease: HeldLease | null): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      apply,
      imported: [],
      overwritten: [],
      missing: [],
      orphansDeleted: [],
      retriedDeletes: [],
      stillFailing: [],
      ...(await deps.sweeper.sweep({ apply, isStopping: () => lease?.isLost() ?? false })),
    };
    checkHeld(lease);
    const now = deps.clock();

    const keys = await queued();
    if (keys.length > 0) {
      if (apply) {
        await deps.images.deleteObjects(keys);
        const left = new Set(await queued());
        for (const k of keys) (left.has(k) ? report.stillFailing : report.retriedDeletes).push(k);
      } else report.retriedDeletes.push(...keys);
    }

    // Originals seen in the bucket, for the images whose original is not (below).
    const listedOriginals = new Set<string>();
    const listingStarted = deps.clock();
    let cursor: string | undefined;
    do {
      checkHeld(lease);
      const page = await storage.list('users/', cursor);
      for (const object of page.keys) {
        if (OUTSIDE_ORIGINAL.test(object.key)) {
          listedOriginals.add(object.key);
          const image = await imageRows.getByOriginalKey(object.key);
          if (image) {
            // Overwritten in place outside the app: another ETag than the one the app recorded.
            if (
              image.staged_key === null &&
              image.original_etag &&
              object.etag &&
              object.etag !== image.original_etag
            ) {
              report.overwritten.push(image.id);
              if (apply) await deps.uploads.refreshOverwritten(image.id);
            }
            continue;
          }
        }
        if ((await knownKey(object.key)) || (await deps.pending.names(object.key))) continue;
        const owner = OUTSIDE_ORIGINAL.exec(object.key)?.[1];
        if (owner && (await deps.users.get(owner))) {
          await importOutside(owner, object.key, report);
          continue;
        }
        const age = object.lastModified ? now - object.lastModified.getTime() : Number.POSITIVE_INFINITY;
        if (age < ORPHAN_GRACE_MS) continue;
        if (apply) await deps.images.discardObjects([object.key]);
        report.orphansDeleted.push(object.key);
      }
      cursor = page.nextCursor;
    } while (cursor);
    // Images whose original the whole listing did not see (and unchanged since it began): deleted
    // from the bucket outside the app.
    let after = '';
    for (;;) {
      checkHeld(lease);
      const rows = await imageRows.storedOriginals(listingStarted, after, 500);
      for (const row of rows) {
        if (listedOriginals.has(row.original_key)) continue;
        // Asked once more: an original copied into place after the listing passed its key is there.
        if ((await storage.head(row.original_key)) !== null) continue;
        report.missing.push(row.id);
        if (apply) await deps.images.trashMissing(row.id);
      }
      if (rows.length < 500) break;
      after = (rows.at(-1) as { id: string }).id;
    }
    return report;
  }

  const runApplied = async (): Promise<ReconcileReport> => {
    const outcome = await deps.leases.tryRun(SWEEP_JOB, JOB_LEASE_MS, (lease) => reconcile(true, lease));
    if (!outcome.ran) {
      throw new Conflict(
        'An upload sweep (or another reconcile) is running now, so nothing was changed. Run reconcile again in a minute.',
      );
    }
    return outcome.result;
  };

  return {
    /**
     * Reconciles every `intervalMs` (RECONCILE_INTERVAL) until stopped, one run at a time on one
     * instance at a time (a run that finds the lease held waits for the next turn): what no event
     * told of (an external bucket, an embedded store's change missed while the app was down) is
     * caught within the interval. Errors are logged, never thrown.
     */
    startSchedule(log: Logger, intervalMs: number): () => Promise<void> {
      let running: Promise<void> | null = null;
      const tick = () => {
        running ??= runApplied()
          .then((r) => {
            const counts = {
              imported: r.imported.length,
              overwritten: r.overwritten.length,
              missing: r.missing.length,
              orphansDeleted: r.orphansDeleted.length,
              completed: r.completed.length,
              skipped: r.skipped.length,
            };
            if (Object.values(counts).some((n) => n > 0)) log.info(counts, 'scheduled reconcile');
          })
          .catch((err: unknown) => {
            if (err instanceof Conflict)
              log.debug('scheduled reconcile skipped: a sweep or reconcile is running');
            else log.error({ err }, 'scheduled reconcile failed');
          })
          .finally(() => {
            running = null;
          });
      };
      const timer = setInterval(tick, intervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },

    /** Refused (Conflict) when applied while an upload sweep or another reconcile runs anywhere. */
    async run({ apply }: { apply: boolean }): Promise<ReconcileReport> {
      if (!apply) return reconcile(false, null); // a dry run changes nothing a sweep could trip on
      return runApplied();
    },
  };
}
