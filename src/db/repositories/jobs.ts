import type { ExpressionBuilder, Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { Database, JobsTable } from '../schema.js';

export type JobRow = Selectable<JobsTable>;

/** A job's claim: who holds it, and which of its claims (attempts) this is. */
export interface JobClaim {
  id: number;
  holder: string;
  attempt: number;
}

/** Jobs nobody holds: never claimed, released after a failure, or a claim that lapsed. */
const unclaimed = (now: number) => (eb: ExpressionBuilder<Database, 'jobs'>) =>
  eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', now)]);

/** Still this claim's: the job row is there and no one has claimed it since. */
const heldBy = (claim: JobClaim) => (eb: ExpressionBuilder<Database, 'jobs'>) =>
  eb.and([eb('id', '=', claim.id), eb('claimed_by', '=', claim.holder), eb('attempts', '=', claim.attempt)]);

/** The jobs table: background work not yet finished (see src/jobs/queue.ts). */
export function jobsRepository(database: AppDb) {
  const isPostgres = database.kind === 'postgres';
  return {
    /**
     * Queues a job behind its owner's others: its turn is how many of them wait, so claims (in turn
     * order) take each person's first job before anyone's second, whoever queued more first.
     */
    async add(job: {
      kind: JobRow['kind'];
      imageId: string;
      ownerId: string;
      originalKey: string;
      now: number;
      /** runs already counted against the job's limit (a retry gets one run) */
      attempts?: number;
    }): Promise<void> {
      await database.q
        .insertInto('jobs')
        .values((eb) => ({
          kind: job.kind,
          image_id: job.imageId,
          owner_id: job.ownerId,
          turn: eb
            .selectFrom('jobs')
            .select((qb) => qb.fn.countAll<number>().as('n'))
            .where('owner_id', '=', job.ownerId),
          original_key: job.originalKey,
          created_at: job.now,
          run_at: job.now,
          attempts: job.attempts ?? 0,
        }))
        .execute();
    },

    /**
     * Claims the next due job nobody holds, in one statement: SQLite runs it alone, and PostgreSQL
     * skips a row another worker is claiming (SKIP LOCKED) instead of waiting for it, so two workers
     * never get one job, whichever instance they run in.
     */
    async claimNext(holder: string, now: number, until: number): Promise<JobRow | undefined> {
      return database.q
        .updateTable('jobs')
        .set((eb) => ({ claimed_by: holder, claimed_until: until, attempts: eb('attempts', '+', 1) }))
        .where('id', '=', (eb) =>
          eb
            .selectFrom('jobs')
            .select('id')
            .where('run_at', '<=', now)
            .where(unclaimed(now))
            .orderBy('turn')
            .orderBy('id')
            .limit(1)
            .$if(isPostgres, (qb) => qb.forUpdate().skipLocked()),
        )
        .returningAll()
        .executeTakeFirst();
    },

    /** Keeps a claim alive while its job runs; false when the claim is no longer this holder's. */
    async renew(claim: JobClaim, until: number): Promise<boolean> {
      const row = await database.q
        .updateTable('jobs')
        .set({ claimed_until: until })
        .where(heldBy(claim))
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Ends a finished job, if the claim is still its holder's; false otherwise. */
    async finish(claim: JobClaim): Promise<boolean> {
      const row = await database.q.deleteFrom('jobs').where(heldBy(claim)).returning('id').executeTakeFirst();
      return row !== undefined;
    },

    /** Lets the job run again at `runAt` (after a failure), if the claim is still its holder's. */
    async release(claim: JobClaim, runAt: number, error: string): Promise<boolean> {
      const row = await database.q
        .updateTable('jobs')
        .set({ claimed_by: null, claimed_until: null, run_at: runAt, last_error: error })
        .where(heldBy(claim))
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Whether any job is due now that nobody holds. */
    async anyDue(now: number): Promise<boolean> {
      const row = await database.q
        .selectFrom('jobs')
        .select('id')
        .where('run_at', '<=', now)
        .where(unclaimed(now))
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Jobs waiting (due or backing off, nobody holds them) and running (claimed), and the oldest's age. */
    async counts(now: number): Promise<{ waiting: number; running: number; oldestCreatedAt: number | null }> {
      const row = await database.q
        .selectFrom('jobs')
        .select((eb) => [
          eb.fn.countAll<number | string>().as('all'),
          eb.fn.count<number | string>('id').filterWhere('claimed_until', '>', now).as('running'),
          eb.fn.min('created_at').as('oldest'),
        ])
        .executeTakeFirstOrThrow();
      const all = Number(row.all);
      const running = Number(row.running);
      return {
        waiting: all - running,
        running,
        oldestCreatedAt: row.oldest === null ? null : Number(row.oldest),
      };
    },
  };
}
