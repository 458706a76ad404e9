import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { type FreshPostgres, freshPostgres, postgresIsReachable } from './support/postgres.js';

// Without a server the PostgreSQL half skips; under CI this throws, failing the file.
const hasPostgres = await postgresIsReachable();

/**
 * database.ts's promises, on both dialects: what a service does inside transaction() commits or
 * rolls back together, nested calls join, a check-then-write holds against concurrent ones, and
 * input PostgreSQL's text cannot hold is not an error.
 */
describe.each([
  { dialect: 'sqlite' as const, skip: false },
  { dialect: 'postgres' as const, skip: !hasPostgres },
])('the database on $dialect', ({ dialect, skip }) => {
  let database: AppDb;
  const lost: Error[] = [];
  let dir: string | undefined;
  let server: FreshPostgres | undefined;

  beforeAll(async () => {
    if (skip) return;
    if (dialect === 'postgres') {
      server = await freshPostgres();
      database = await connectDatabase({ url: server.url }, (err) => lost.push(err));
    } else {
      dir = mkdtempSync(path.join(tmpdir(), 's3g-database-'));
      database = await connectDatabase({ sqliteFile: path.join(dir, 'gallery.db') });
    }
  });
  afterAll(async () => {
    await database?.close();
    await server?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A counter row (a job lease's held_until), read and written as services do. */
  const counter = {
    async reset(name: string) {
      await database.q.deleteFrom('job_leases').where('name', '=', name).execute();
      await database.q.insertInto('job_leases').values({ name, held_by: 'test', held_until: 0 }).execute();
    },
    async read(name: string): Promise<number> {
      const row = await database.q
        .selectFrom('job_leases')
        .select('held_until')
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      return row.held_until;
    },
    async write(name: string, value: number) {
      await database.q
        .updateTable('job_leases')
        .set({ held_until: value })
        .where('name', '=', name)
        .execute();
    },
  };

  it.skipIf(skip)('rolls back every query of a transaction that throws, nested calls included', async () => {
    await counter.reset('rollback');
    await expect(
      database.transaction(async () => {
        await counter.write('rollback', 1);
        await database.transaction(async () => {
          expect(database.inTransaction()).toBe(true);
          await counter.write('rollback', 2);
        });
        expect(await counter.read('rollback')).toBe(2);
        throw new Error('refused halfway');
      }),
    ).rejects.toThrow('refused halfway');
    expect(await counter.read('rollback')).toBe(0);
    expect(database.inTransaction()).toBe(false);
  });

  it.skipIf(skip)('loses no update when twenty read-then-write transactions run at once', async () => {
    await counter.reset('race');
    let runs = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        database.transaction(async () => {
          runs++;
          const value = await counter.read('race');
          // Another transaction may read the same value meanwhile: only serializability saves it.
          await new Promise((resolve) => setImmediate(resolve));
          await counter.write('race', value + 1);
        }),
      ),
    );
    expect(await counter.read('race')).toBe(20);
    // SQLite serializes them with its write lock; PostgreSQL aborts conflicting ones and runs them again.
    if (dialect === 'sqlite') expect(runs).toBe(20);
    else expect(runs).toBeGreaterThan(20);
  });

  it.skipIf(skip)(
    'runs a task a transaction left behind on its own after the commit, not on the finished transaction',
    async () => {
      await counter.reset('after');
      let later: Promise<number> | undefined;
      await database.transaction(async () => {
        await counter.write('after', 1);
        later = new Promise<void>((resolve) => setTimeout(resolve, 20)).then(async () => {
          expect(database.inTransaction()).toBe(false);
          await counter.write('after', 2);
          return counter.read('after');
        });
      });
      expect(await later).toBe(2);
      expect(await counter.read('after')).toBe(2);
    },
  );

  it.skipIf(skip)('takes a NUL in a text parameter without an error: a lookup finds nothing', async () => {
    await counter.reset('nul');
    expect(
      await database.q.selectFrom('job_leases').selectAll().where('name', '=', 'nul\0').executeTakeFirst(),
    ).toBeUndefined();
    await database.q
      .insertInto('job_leases')
      .values({ name: 'with\0nul', held_by: 'x\0', held_until: 1 })
      .execute();
    const stored = await database.q
      .selectFrom('job_leases')
      .select('held_by')
      .where('held_until', '=', 1)
      .executeTakeFirstOrThrow();
    // SQLite keeps the NUL; PostgreSQL's text cannot, so it holds U+FFFD in its place.
    expect(stored.held_by).toBe(dialect === 'sqlite' ? 'x\0' : 'x\uFFFD');
  });

  it.skipIf(skip || dialect !== 'postgres')(
    'outlives the server ending its idle connections, and says so',
    async () => {
      await counter.reset('lost');
      const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(database.q);
      // Another connection ends this one's backend, as a restart or idle_session_timeout would.
      const other = await connectDatabase({ url: server?.url as string });
      try {
        await sql`SELECT pg_terminate_backend(${rows[0]?.pid})`.execute(other.q);
      } finally {
        await other.close();
      }
      await vi.waitFor(() => expect(lost.map((e) => (e as { code?: string }).code)).toContain('57P01'));
      await counter.write('lost', 7);
      expect(await counter.read('lost')).toBe(7);
    },
  );

  it.skipIf(skip || dialect !== 'postgres')(
    'outlives a connection lost while a query runs on it: that call fails, nothing else',
    async () => {
      const other = await connectDatabase({ url: server?.url as string });
      try {
        let release = () => {};
        const held = other.lockedTransaction(
          ['busy'],
          () => new Promise<void>((resolve) => (release = resolve)),
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
        // This call waits for the lock `other` holds, on a connection of its own...
        // (Its outcome is taken at once: a rejection nobody awaits yet is an unhandled one.)
        const waiting = database
          .lockedTransaction(['busy'], async () => {})
          .then(
            () => null,
            (err: unknown) => err,
          );
        const waiter = async () => {
          const { rows } = await sql<{ pid: number }>`
          SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`.execute(
            other.q,
          );
          return rows[0]?.pid;
        };
        await vi.waitFor(async () => expect(await waiter()).toBeDefined());
        // ...which the server ends mid-query, as a restart or failover would.
        const pid = await waiter();
        const killer = await connectDatabase({ url: server?.url as string });
        await sql`SELECT pg_terminate_backend(${pid})`.execute(killer.q);
        await killer.close();
        expect(await waiting).toBeInstanceOf(Error);
        release();
        await held;
      } finally {
        await other.close();
      }
      await counter.reset('after-kill');
      expect(await counter.read('after-kill')).toBe(0);
    },
  );
});
