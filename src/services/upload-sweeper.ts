import type { Logger } from 'pino';
import type { ListedObject, Storage } from '../storage/storage.js';
import type { Clock } from './clock.js';
import { Conflict, DomainError, Unavailable } from './errors.js';
import type { Images } from './images.js';
import { JOB_LEASE_MS, type JobLeases } from './job-lease.js';
import { isPrefixUpload, type PendingUpload, type PendingUploads, uploadKeyOf } from './pending-uploads.js';
import type { Uploads } from './uploads.js';
import type { Users } from './users.js';

/** How often the server sweeps on its own; a row waits at most this long past its policy's expiry. */
export const SWEEP_INTERVAL_MS = 5 * 60 * 1000;
/** Rows read from the database at a time; a run goes on until every due row has had its turn. */
export const SWEEP_BATCH = 500;
/** The lease the timer's sweeps and reconcile --apply share, so one runs at a time across instances. */
export const SWEEP_JOB = 'upload-sweep';

export interface SweepReport {
  /** uploads whose file arrived but whose browser never came back: completed now */
  completed: string[];
  /** ...of those, the ones refused (not an image, over quota): removed */
  rejected: string[];
  /** uploads whose file never arrived: their rows dropped */
  expired: string[];
  /** objects a replayed policy wrote to a finished upload's staging key (or beside its file): deleted */
  replaysDeleted: string[];
  /** objects the bucket could not read (they stay, and are tried again next time) */
  skipped: { key: string; reason: string }[];
}

const emptySweepReport = (): SweepReport => ({
  completed: [],
  rejected: [],
  expired: [],
  replaysDeleted: [],
  skipped: [],
});

/** A short reason for the report: what the bucket said, never a stack. */
export function storageFailure(err: unknown): string {
  const cause = err instanceof Unavailable && err.cause !== undefined ? err.cause : err;
  if (!(cause instanceof Error)) return String(cause).slice(0, 200);
  const status = (cause as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return `${cause.name}${status ? ` (HTTP ${status})` : ''}: ${cause.message}`.slice(0, 200);
}

/**
 * Settles pending uploads whose policy has expired (with the clock margin), so nothing it signed
 * can write any more: a finished upload's staging key loses whatever a replay put there; an
 * unfinished one is completed if its file arrived, else dropped. The server runs it on a timer,
 * on one instance at a time (the SWEEP_JOB lease); reconcile runs the same sweep.
 */
export function createUploadSweeper(deps: {
  storage: Storage;
  pending: PendingUploads;
  uploads: Uploads;
  users: Users;
  images: Images;
  clock: Clock;
  leases: JobLeases;
}) {
  const { storage, pending, uploads, users, images, clock, leases } = deps;

  /** The objects a row's policy wrote: its key, or whatever it put under a plain form's prefix. */
  async function objectsOf(row: PendingUpload): Promise<{ key: string; lastModified?: Date | undefined }[]> {
    if (!isPrefixUpload(row.key)) {
      const info = await storage.head(row.key);
      return info ? [{ key: row.key, lastModified: info.lastModified }] : [];
    }
    const found: ListedObject[] = [];
    let cursor: string | undefined;
    do {
      const page = await storage.list(row.key, cursor);
      found.push(...page.keys);
      cursor = page.nextCursor;
    } while (cursor);
    return found;
  }

  async function sweepOne(listed: PendingUpload, apply: boolean, report: SweepReport) {
    // Listed before the rows ahead of it were settled: a completion may have finished it since.
    const row = await pending.get(listed.key);
    if (!row) return;
    // An upload in parts never joined (given up, or its browser gone): no URL for a part is valid
    // now, so its parts go. A file already joined is at its key, and settled like any other. An
    // abort the bucket refuses (credentials without s3:AbortMultipartUpload, say) is reported and
    // the row settled anyway, so its room in the quota is not held for ever (the bucket's
    // lifecycle rule, or the embedded store after a day, drops the parts).
    if (row.multipartId && apply) {
      await storage.abortMultipart(row.key, row.multipartId).catch((err: unknown) => {
        report.skipped.push({ key: row.key, reason: `parts not aborted: ${storageFailure(err)}` });
      });
    }
    if (row.closedAt !== null) {
      // Its image's job has yet to copy the file from here: the next sweep looks again.
      if (await uploads.isAwaitingCopy(row.key)) return;
      const written = (await objectsOf(row)).map((o) => o.key);
      if (apply && written.length > 0) await images.discardObjects(written);
      report.replaysDeleted.push(...written);
      if (apply) await pending.remove(row.key);
      return;
    }
    const owner = await users.get(row.ownerId);
    const written = owner ? await objectsOf(row) : [];
    // A file of the upload is named right under its prefix; the policy also lets its holder write
    // deeper (a key field of their own): never a file of the upload, only deleted.
    const deeper = written.filter((o) => uploadKeyOf(o.key) !== row.key);
    // The newest file first: under a plain form's prefix, a replay may have stored several.
    const arrived = written
      .filter((o) => uploadKeyOf(o.key) === row.key)
      .sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0));
    const [file, ...besides] = arrived;
    const others = [...besides, ...deeper];
    if (!file || !owner) {
      if (apply && others.length > 0) await images.discardObjects(others.map((o) => o.key));
      report.replaysDeleted.push(...others.map((o) => o.key));
      if (apply) await pending.remove(row.key);
      report.expired.push(row.key);
      return;
    }
    if (!apply) {
      report.completed.push(row.key);
      report.replaysDeleted.push(...others.map((o) => o.key));
      return;
    }
    // A claim this process does not hold is a completion that died with its process: start over.
    // Released before its copy goes: if the row was completed meanwhile, that copy is an image's original.
    if (row.finalKey !== null) {
      if (!(await pending.release(row.key, row.finalKey))) return; // settled since; the next sweep looks again
      await images.discardObjects([row.finalKey]);
    }
    try {
      await uploads.complete(owner, file.key);
      report.completed.push(row.key);
    } catch (err) {
      // Refused for good (not an image, over quota…) it is rejected; storage trouble and a lost race are retried.
      if (!(err instanceof DomainError) || err instanceof Unavailable || err instanceof Conflict) throw err;
      report.rejected.push(row.key);
    }
    if (others.length > 0) {
      await images.discardObjects(others.map((o) => o.key));
      report.replaysDeleted.push(...others.map((o) => o.key));
    }
    // Its policy expired long ago: nothing can replay it, so the row has done its work.
    await pending.remove(row.key);
  }

  /**
   * Every row due now, in batches: a member can leave rows faster than one batch per interval
   * (each completed upload leaves one), and a backlog would hold everyone's reservations.
   */
  async function sweep(o: { apply: boolean; isStopping?: () => boolean }): Promise<SweepReport> {
    const { apply } = o;
    const report = emptySweepReport();
    const now = clock();
    let batch = await pending.due(now, SWEEP_BATCH);
    while (batch.length > 0) {
      for (const row of batch) {
        if (o.isStopping?.()) return report; // the server is stopping: the rest waits for the next start
        if (uploads.isCompleting(row.key)) continue;
        try {
          await sweepOne(row, apply, report);
        } catch (err) {
          report.skipped.push({ key: row.key, reason: storageFailure(err) });
        }
      }
      // From after the last row listed: skipped ones are left for the next run, not read again.
      batch = batch.length < SWEEP_BATCH ? [] : await pending.due(now, SWEEP_BATCH, batch.at(-1));
    }
    return report;
  }

  /**
   * One of the timer's sweeps, unless another instance (or reconcile) is sweeping now: then null,
   * and the next turn sweeps what is due. A sweep whose lease lapsed stops after the row in hand.
   */
  async function sweepScheduled(log: Logger, isStopping: () => boolean = () => false) {
    const outcome = await leases.tryRun(SWEEP_JOB, JOB_LEASE_MS, (lease) =>
      sweep({ apply: true, isStopping: () => isStopping() || lease.isLost() }),
    );
    if (!outcome.ran) {
      log.debug('upload sweep skipped: another instance is sweeping');
      return null;
    }
    const r = outcome.result;
    for (const s of r.skipped) log.warn(s, 'upload sweep skipped an object it could not read');
    const done = r.completed.length + r.rejected.length + r.expired.length + r.replaysDeleted.length;
    if (done > 0) {
      log.info(
        {
          completed: r.completed.length,
          rejected: r.rejected.length,
          expired: r.expired.length,
          replaysDeleted: r.replaysDeleted.length,
        },
        'upload sweep',
      );
    }
    return r;
  }

  let running: Promise<void> | null = null;

  return {
    sweep,

    sweepScheduled,

    /** Sweeps every `intervalMs` until stopped, one run at a time; errors are logged, never thrown. */
    start(log: Logger, intervalMs = SWEEP_INTERVAL_MS): () => Promise<void> {
      let isStopping = false;
      const tick = () => {
        running ??= sweepScheduled(log, () => isStopping)
          .then(() => {})
          .catch((err) => log.error({ err }, 'upload sweep failed'))
          .finally(() => {
            running = null;
          });
      };
      const timer = setInterval(tick, intervalMs);
      timer.unref();
      return async () => {
        isStopping = true;
        clearInterval(timer);
        await running;
      };
    },
  };
}

export type UploadSweeper = ReturnType<typeof createUploadSweeper>;
