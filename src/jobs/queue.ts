import type { Logger } from 'pino';
import type { AppDb } from '../db/database.js';
import { type JobClaim, type JobRow, jobsRepository } from '../db/repositories/jobs.js';
import type { Clock } from '../services/clock.js';

/** A job that cannot succeed however often it runs (a damaged file): it fails at once, with this reason. */
export class JobFailed extends Error {}

/** What runs one kind of job. It ends the job itself (see JobsRepository.finish), in its own transaction. */
export interface JobHandler {
  /**
   * Runs the job; says how it ended, for the log ('ready', or why there was nothing to do).
   * `isLost` turns true once a renewal found the claim gone (another worker took the job after
   * this one stalled): stop before writing anything more.
   */
  run(job: JobRow, claim: JobClaim, isLost: () => boolean): Promise<string>;
  /** Gives the job up, telling its owner why (the reason is for people). */
  giveUp(job: JobRow, claim: JobClaim, reason: string): Promise<void>;
  /** Tidies up before the workers start (what a killed process left behind). */
  prepare?(log: Logger): Promise<void>;
}

/** Runs of one job before it fails for good: a storage outage longer than the backoff below sums to. */
export const MAX_ATTEMPTS = 6;
/** The wait after a run's first failure; it doubles with each further one, up to BACKOFF_MAX_MS. */
const BACKOFF_MS = 5_000;
const BACKOFF_MAX_MS = 5 * 60_000;
/** How often an idle worker looks for jobs another instance added (its own wake it at once). */
const POLL_MS = 1_000;

export interface QueueOptions {
  database: AppDb;
  clock: Clock;
  /** This process, among the instances sharing the database. */
  instanceId: string;
  handler: JobHandler;
  /** Jobs run at once by this process. */
  workers: number;
  /**
   * How long a claim lasts past its last renewal; a running job renews it every third of this, so
   * it lapses only when its worker is gone (crashed, killed), and another worker takes the job then.
   */
  leaseMs: number;
}

/** Jittered (±20%), so jobs that failed together do not all come back together; whole ms (an integer column). */
const backoffMs = (attempts: number) =>
  Math.round(
    Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** Math.max(0, attempts - 1)) * (0.8 + Math.random() * 0.4),
  );

/**
 * Durable background work, claimed from the database: each job runs on one worker at a time,
 * whichever instance it is in; a failed run is retried later (backing off), and a job that keeps
 * failing, or whose runs keep being cut short (a crash), is given up after MAX_ATTEMPTS.
 */
export function createJobQueue(opts: QueueOptions) {
  const { database, clock, instanceId, handler, leaseMs } = opts;
  const jobs = jobsRepository(database);
  let busy = 0;
  let stopping = false;
  let loops: Promise<void>[] = [];
  let wake: (() => void) | null = null;
  let wakeUp = new Promise<void>((resolve) => {
    wake = resolve;
  });

  function notify(): void {
    wake?.();
    wakeUp = new Promise<void>((resolve) => {
      wake = resolve;
    });
  }

  /** Claims and runs the next due job; false when none was due. */
  async function runNext(log?: Logger): Promise<boolean> {
    // Counted from before the claim, so drain() never sees a job claimed but not yet counted.
    busy++;
    try {
      const job = await jobs.claimNext(instanceId, clock(), clock() + leaseMs);
      if (!job) return false;
      await runClaimed(job, log);
      return true;
    } finally {
      busy--;
    }
  }

  async function runClaimed(job: JobRow, log?: Logger): Promise<void> {
    const claim: JobClaim = { id: job.id, holder: instanceId, attempt: Number(job.attempts) };
    let isLost = false;
    const renewal = setInterval(
      () => {
        jobs.renew(claim, clock() + leaseMs).then(
          (held) => {
            if (!held) isLost = true;
          },
          (err: unknown) => log?.warn({ err, job: job.id }, 'job lease renewal failed'),
        );
      },
      Math.max(10, Math.floor(leaseMs / 3)),
    );
    renewal.unref();
    try {
      if (claim.attempt > MAX_ATTEMPTS) {
        // Its earlier runs never ended (each took its process down, or was killed): not one more.
        await handler.giveUp(
          job,
          claim,
          `Processing was interrupted ${MAX_ATTEMPTS} times, so it was given up.`,
        );
        return;
      }
      const started = performance.now();
      const outcome = await handler.run(job, claim, () => isLost);
      log?.info({
        msg: 'job finished',
        job: job.id,
        kind: job.kind,
        image: job.image_id,
        outcome,
        attempt: claim.attempt,
        ms: Math.round(performance.now() - started),
      });
    } catch (err) {
      await settleFailure(job, claim, err, log);
    } finally {
      clearInterval(renewal);
    }
  }

  async function settleFailure(job: JobRow, claim: JobClaim, err: unknown, log?: Logger): Promise<void> {
    try {
      if (err instanceof JobFailed) {
        await handler.giveUp(job, claim, err.message);
      } else if (claim.attempt >= MAX_ATTEMPTS) {
        log?.warn({ err, job: job.id, attempts: claim.attempt }, 'job failed for good');
        await handler.giveUp(
          job,
          claim,
          'The file could not be read from storage, although it was tried several times. Please try again.',
        );
      } else {
        log?.info({ err, job: job.id, attempts: claim.attempt }, 'job failed; it will be retried');
        const message = err instanceof Error ? err.message : String(err);
        await jobs.release(claim, clock() + backoffMs(claim.attempt), message.slice(0, 500));
      }
    } catch (settleErr) {
      // The database is away: the claim lapses, and the job runs again then.
      log?.warn({ err: settleErr, job: job.id }, 'could not record a job failure');
    }
  }

  async function loop(log: Logger): Promise<void> {
    while (!stopping) {
      const waiting = wakeUp;
      let ran = false;
      try {
        ran = await runNext(log);
      } catch (err) {
        log.warn({ err }, 'could not claim a job');
      }
      if (ran || stopping) continue;
      await Promise.race([waiting, new Promise((resolve) => setTimeout(resolve, POLL_MS).unref())]);
    }
  }

  return {
    /** Wakes idle workers: a job was just added. */
    notify,

    /** Starts `workers` loops; the returned function stops them, after the jobs in hand end. */
    start(log: Logger): () => Promise<void> {
      stopping = false;
      const prepared = (handler.prepare?.(log) ?? Promise.resolve()).catch((err: unknown) =>
        log.warn({ err }, 'could not tidy up before starting the workers'),
      );
      loops = Array.from({ length: opts.workers }, () => prepared.then(() => loop(log)));
      return async () => {
        stopping = true;
        notify();
        await Promise.allSettled(loops);
        loops = [];
      };
    },

    /**
     * Resolves once no job is due and none runs in this process (for tests and the CLI): with
     * workers started it waits for them; without, it runs the due jobs itself, one by one.
     */
    async drain(): Promise<void> {
      for (;;) {
        if (loops.length === 0) {
          if (!(await runNext())) return;
          continue;
        }
        if (busy === 0 && !(await jobs.anyDue(clock())) && busy === 0) return;
        notify();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },

    /** Jobs waiting and running, everywhere (for /healthz and the admin console). */
    counts: () => jobs.counts(clock()),
  };
}
