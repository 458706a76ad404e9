import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type Db, openDatabase } from '../src/db/connection.js';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { createJobLeases, type HeldLease, JOB_LEASE_MS } from '../src/services/job-lease.js';
import { freshPostgres, postgresIsReachable } from './support/postgres.js';

// Without a server the PostgreSQL half skips; under CI this throws, failing the file.
const hasPostgres = await postgresIsReachable();

/** Two instances' connections to one database, and a way to close them all. */
interface Shared {
  connect(): Promise<AppDb>;
  close(): Promise<void>;
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function sharedSqlite(): Promise<Shared> {
  const dir = mkdtempSync(path.join(tmpdir(), 's3g-leases-'));
  tempDirs.push(dir);
  const connections: Db[] = [];
  return {
    async connect() {
      const connection = openDatabase(path.join(dir, 'gallery.db'));
      connections.push(connection);
      return connectDatabase({ sqlite: connection });
    },
    async close() {
      for (const connection of connections) connection.close();
    },
  };
}

async function sharedPostgres(): Promise<Shared> {
  const server = await freshPostgres();
  const pools: AppDb[] = [];
  return {
    async connect() {
      const database = await connectDatabase({ url: server.url });
      pools.push(database);
      return database;
    },
    async close() {
      for (const database of pools) await database.close();
      await server.drop();
    },
  };
}

/** A job that runs until released, so the test decides when it ends. */
function gatedJob() {
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let runs = 0;
  let lease: HeldLease | undefined;
  return {
    work: async (held: HeldLease) => {
      runs++;
      lease = held;
      await gate;
      return 'done';
    },
    release: () => release(),
    get runs() {
      return runs;
    },
    get lease() {
      return lease;
    },
  };
}

const dialects = [
  { name: 'SQLite', open: sharedSqlite, skip: false },
  { name: 'PostgreSQL', open: sharedPostgres, skip: !hasPostgres },
];

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`job leases on ${dialect.name}`, () => {
    let shared: Shared;
    let now = 1_767_225_600_000;
    const clock = () => now;
    afterEach(() => shared?.close());

    async function twoInstances() {
      shared = await dialect.open();
      return [
        createJobLeases({ database: await shared.connect(), clock, instanceId: 'instance-a' }),
        createJobLeases({ database: await shared.connect(), clock, instanceId: 'instance-b' }),
      ] as const;
    }

    it('runs a job on one of two instances starting it at once, and on either again once it is done', async () => {
      const [a, b] = await twoInstances();
      for (let round = 0; round < 3; round++) {
        const job = gatedJob();
        const both = Promise.all([
          a.tryRun('sweep', JOB_LEASE_MS, job.work),
          b.tryRun('sweep', JOB_LEASE_MS, job.work),
        ]);
        await vi.waitFor(() => expect(job.runs).toBe(1));
        // Neither instance starts it again while it runs, this one included.
        expect((await a.tryRun('sweep', JOB_LEASE_MS, job.work)).ran).toBe(false);
        expect((await b.tryRun('sweep', JOB_LEASE_MS, job.work)).ran).toBe(false);
        job.release();
        const outcomes = await both;
        expect(outcomes.filter((o) => o.ran)).toEqual([{ ran: true, result: 'done' }]);
        expect(job.runs).toBe(1);
        now += 1000;
      }
    });

    it('keeps leases of different jobs apart', async () => {
      const [a, b] = await twoInstances();
      const sweep = gatedJob();
      const running = a.tryRun('sweep', JOB_LEASE_MS, sweep.work);
      await vi.waitFor(() => expect(sweep.runs).toBe(1));
      expect(await b.tryRun('purge', JOB_LEASE_MS, async () => 'purged')).toEqual({
        ran: true,
        result: 'purged',
      });
      sweep.release();
      await running;
    });

    it('blocks the others while a crashed holder’s lease lasts, and lets one in once it lapses', async () => {
      const [a, b] = await twoInstances();
      const crashed = gatedJob(); // taken, never released: its process died mid-run
      void a.tryRun('sweep', JOB_LEASE_MS, crashed.work);
      await vi.waitFor(() => expect(crashed.runs).toBe(1));
      const job = vi.fn(async () => 'ran');
      now += JOB_LEASE_MS - 1;
      expect(await b.tryRun('sweep', JOB_LEASE_MS, job)).toEqual({ ran: false });
      now += 1; // the lease has lapsed
      expect(crashed.lease?.isLost()).toBe(true);
      expect(await b.tryRun('sweep', JOB_LEASE_MS, job)).toEqual({ ran: true, result: 'ran' });
      expect(job).toHaveBeenCalledTimes(1);
    });

    it('renews the lease while the job runs, so a long run keeps it', async () => {
      const [a, b] = await twoInstances();
      const leaseMs = 200; // renewed every 50 ms of real time
      const job = gatedJob();
      const running = a.tryRun('sweep', leaseMs, job.work);
      await vi.waitFor(() => expect(job.runs).toBe(1));
      const reader = await shared.connect();
      const heldUntil = async () =>
        (await reader.q.selectFrom('job_leases').select('held_until').executeTakeFirstOrThrow()).held_until;
      for (let i = 0; i < 3; i++) {
        now += leaseMs / 2;
        await vi.waitFor(async () => expect(await heldUntil()).toBe(now + leaseMs), { timeout: 5000 });
      }
      await vi.waitFor(() => expect(job.lease?.isLost()).toBe(false));
      expect((await b.tryRun('sweep', leaseMs, job.work)).ran).toBe(false);
      job.release();
      expect(await running).toEqual({ ran: true, result: 'done' });
      expect(await heldUntil()).toBe(now); // released: anyone may take it now
      expect(await b.tryRun('sweep', leaseMs, async () => 'next')).toEqual({ ran: true, result: 'next' });
    });

    it('leaves the lease alone when a holder whose lease lapsed finishes late', async () => {
      const [a, b] = await twoInstances();
      const late = gatedJob();
      const lateRun = a.tryRun('sweep', JOB_LEASE_MS, late.work);
      await vi.waitFor(() => expect(late.runs).toBe(1));
      now += JOB_LEASE_MS; // a stalled for the whole lease: b takes the job
      const current = gatedJob();
      const currentRun = b.tryRun('sweep', JOB_LEASE_MS, current.work);
      await vi.waitFor(() => expect(current.runs).toBe(1));
      expect(late.lease?.isLost()).toBe(true);
      late.release();
      await lateRun;
      // a's release did not end b's lease: a third start is still refused.
      expect((await a.tryRun('sweep', JOB_LEASE_MS, current.work)).ran).toBe(false);
      current.release();
      expect(await currentRun).toEqual({ ran: true, result: 'done' });
    });

    it('releases the lease when the job fails, and passes the failure on', async () => {
      const [a, b] = await twoInstances();
      await expect(
        a.tryRun('sweep', JOB_LEASE_MS, async () => {
          throw new Error('bucket unreachable');
        }),
      ).rejects.toThrow('bucket unreachable');
      expect(await b.tryRun('sweep', JOB_LEASE_MS, async () => 'ran')).toEqual({ ran: true, result: 'ran' });
    });
  });
}
