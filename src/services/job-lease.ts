import type { AppDb } from '../db/database.js';
import { jobLeasesRepository } from '../db/repositories/job-leases.js';
import type { Clock } from './clock.js';

/**
 * How long a scheduled job's lease lasts past its last renewal. A running job renews it every
 * quarter of this, so it only lapses when its holder is gone (crashed, killed, cut off from the
 * database) or stalled for over 90 s; then another instance takes the job at its next turn. Two
 * minutes: the sweep runs every 5 minutes, so a crashed holder delays at most one run.
 */
export const JOB_LEASE_MS = 2 * 60 * 1000;

/** What a job learns while it runs: whether its lease may have gone to another instance. */
export interface HeldLease {
  /** True once the lease may have lapsed (renewals failed for too long): stop at the next safe point. */
  isLost(): boolean;
}

export type LeaseOutcome<T> = { ran: true; result: T } | { ran: false };

/**
 * Runs a named job on one instance at a time. The lease is a row of job_leases, taken in one
 * statement (an upsert that overwrites only a lapsed lease, or this instance's own), so two
 * instances starting a job at once never both run it, on SQLite or PostgreSQL.
 */
export function createJobLeases(deps: { database: AppDb; clock: Clock; instanceId: string }) {
  const { database, clock, instanceId } = deps;
  const leases = jobLeasesRepository(database);
  /** Jobs this process runs now: its own id matches its lease, so it must not start them twice. */
  const running = new Set<string>();

  /** Takes (or renews) the lease until now + leaseMs; false when another instance holds it. */
  const take = (name: string, leaseMs: number) => leases.take(name, instanceId, clock(), leaseMs);

  /** Ends the lease now, if this instance still holds it: the next turn, anywhere, may run the job. */
  const release = (name: string) => leases.release(name, instanceId, clock());

  return {
    /**
     * Runs `work` if this instance gets the job's lease, renewing it while the work runs and
     * releasing it after; `{ ran: false }` when another instance (or this one) is running it now.
     */
    async tryRun<T>(
      name: string,
      leaseMs: number,
      work: (lease: HeldLease) => Promise<T>,
    ): Promise<LeaseOutcome<T>> {
      if (running.has(name)) return { ran: false };
      running.add(name);
      try {
        if (!(await take(name, leaseMs))) return { ran: false };
        let heldUntil = clock() + leaseMs;
        let isLost = false;
        let renewing: Promise<void> = Promise.resolve();
        const renewal = setInterval(() => {
          const until = clock() + leaseMs;
          renewing = take(name, leaseMs).then(
            (renewed) => {
              if (renewed) heldUntil = until;
              else isLost = true;
            },
            () => {}, // the database is unreachable: the lease holds until heldUntil, the next renewal retries
          );
        }, leaseMs / 4);
        renewal.unref();
        try {
          const result = await work({ isLost: () => isLost || clock() >= heldUntil });
          return { ran: true, result };
        } finally {
          clearInterval(renewal);
          await renewing; // a renewal landing after the release would hold the lease on
          // Not released (the database is gone), the lease lapses on its own after leaseMs.
          await release(name).catch(() => {});
        }
      } finally {
        running.delete(name);
      }
    },
  };
}

export type JobLeases = ReturnType<typeof createJobLeases>;
