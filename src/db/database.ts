import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  sql,
  type Transaction,
} from 'kysely';
import { Client, Pool, TypeOverrides, types } from 'pg';
import type { Config } from '../config.js';
import { openDatabase as openSqliteFile } from './connection.js';
import { migratePostgres } from './migrations-postgres.js';
import type { Database } from './schema.js';

type DatabaseKind = 'sqlite' | 'postgres';

/** Where the metadata lives: a SQLite file (or an open connection to one), or a postgres:// URL. */
export type DatabaseTarget = { sqliteFile: string } | { sqlite: BetterSqlite3.Database } | { url: string };

/**
 * The app's metadata database, either dialect. Repositories take their query builder from `q`:
 * inside `transaction()` that is the open transaction, so everything a service does in one
 * transaction commits together without passing a handle through every call.
 */
export interface AppDb {
  readonly kind: DatabaseKind;
  /** The query builder for the caller's context: its open transaction, or the connection (pool). */
  readonly q: Kysely<Database>;
  /**
   * Runs `work` in one write transaction; a call made inside one joins it. Serializable on both
   * dialects (SQLite's BEGIN IMMEDIATE takes the write lock first; PostgreSQL's SERIALIZABLE aborts
   * one of two conflicting transactions, which is then run again), so a check followed by a write
   * holds against every other instance. `work` may therefore run more than once: it must touch
   * nothing but the database (no S3 call, no message, no in-memory state it cannot redo).
   */
  transaction<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Runs `work` in one write transaction that first takes the named locks (PostgreSQL advisory
   * locks, in sorted order; on SQLite the write lock covers them). For work whose every conflict
   * is over those names, such as counters keyed by name: it runs READ COMMITTED on PostgreSQL, so
   * transactions over different names never abort one another, as SERIALIZABLE ones reading
   * neighbouring rows would under load. A call inside a transaction takes the locks in it.
   */
  lockedTransaction<T>(names: readonly string[], work: () => Promise<T>): Promise<T>;
  /** Whether the caller runs inside transaction() or lockedTransaction(). */
  inTransaction(): boolean;
  /** The SQLite connection underneath (backups, copies); null on PostgreSQL. */
  readonly sqlite: BetterSqlite3.Database | null;
  close(): Promise<void>;
}

/** PostgreSQL's answers to "run it again": serialization failure and deadlock. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 12;

/** Where the configuration puts the metadata. */
export function databaseTarget(config: Pick<Config, 'database'>): DatabaseTarget {
  return config.database.kind === 'postgres'
    ? { url: config.database.url }
    : { sqliteFile: config.database.file };
}

/** What a PostgreSQL pool reports on its own: a connection it held idle was lost. */
type OnConnectionLost = (err: Error) => void;

/**
 * Opens (and migrates) the database; the app and the command line both start here. On PostgreSQL
 * a connection the server ends while idle (a restart, a failover, idle_session_timeout) is reported
 * to `onConnectionLost` and replaced at the next query; it never ends the process.
 */
export async function connectDatabase(
  target: DatabaseTarget,
  onConnectionLost: OnConnectionLost = () => {},
): Promise<AppDb> {
  if ('url' in target) {
    const kysely = openKysely(target, onConnectionLost);
    try {
      await migratePostgres(kysely);
    } catch (err) {
      await kysely.destroy();
      throw err;
    }
    return wrap('postgres', kysely, null, () => kysely.destroy());
  }
  const owned = 'sqliteFile' in target;
  const connection = owned ? openSqliteFile(target.sqliteFile) : target.sqlite;
  const kysely = openKysely({ sqlite: connection });
  return wrap('sqlite', kysely, connection, async () => {
    if (owned && connection.open) connection.close();
  });
}

/**
 * A bare typed query builder on either dialect, for tools that need no transactions of the app's
 * kind (copies, tests). On SQLite it shares the caller's connection and destroy() leaves it open;
 * on PostgreSQL it owns a pool, which destroy() ends.
 */
export function openKysely(
  target: { sqlite: BetterSqlite3.Database } | { url: string },
  onConnectionLost: OnConnectionLost = () => {},
): Kysely<Database> {
  if ('sqlite' in target) return new Kysely<Database>({ dialect: new ImmediateSqliteDialect(target.sqlite) });
  const pool = openPool(target.url);
  // Without listeners, pg's 'error' event would end the process: the pool's for a client it holds
  // idle, the client's own for one lost while a query runs (that query fails on its own).
  pool.on('error', onConnectionLost);
  pool.on('connect', (client) => client.on('error', onConnectionLost));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

function wrap(
  kind: DatabaseKind,
  root: Kysely<Database>,
  sqlite: BetterSqlite3.Database | null,
  close: () => Promise<void>,
): AppDb {
  // The open transaction of the caller's async context. A task started inside a transaction (a
  // timer, a promise nobody awaited) keeps that context after the commit: `open` turns false then,
  // so such a task runs its queries on their own instead of on a finished transaction's connection.
  const current = new AsyncLocalStorage<{ trx: Transaction<Database>; open: boolean }>();
  const openTransaction = () => {
    const held = current.getStore();
    return held?.open ? held.trx : undefined;
  };

  /** Advisory locks on the names, each held until the transaction ends; none on SQLite. */
  async function lock(names: readonly string[], trx: Kysely<Database>): Promise<void> {
    if (kind !== 'postgres') return;
    for (const name of [...new Set(names)].sort())
      await sql`SELECT pg_advisory_xact_lock(hashtextextended(${name}, 0))`.execute(trx);
  }

  async function attempt<T>(work: () => Promise<T>, names: readonly string[] | null): Promise<T> {
    let begin = root.transaction();
    if (kind === 'postgres') begin = begin.setIsolationLevel(names ? 'read committed' : 'serializable');
    return begin.execute(async (trx) => {
      if (names) await lock(names, trx);
      const held = { trx, open: true };
      try {
        return await current.run(held, work);
      } finally {
        held.open = false;
      }
    });
  }

  async function run<T>(work: () => Promise<T>, names: readonly string[] | null): Promise<T> {
    const open = openTransaction();
    if (open) {
      if (names) await lock(names, open);
      return work();
    }
    for (let n = 1; ; n++) {
      try {
        return await attempt(work, names);
      } catch (err) {
        if (n >= MAX_ATTEMPTS || !isContention(err)) throw err;
        // Apart, so the two that collided do not collide again.
        await sleep(Math.random() * Math.min(200, 5 * 2 ** n));
      }
    }
  }

  return {
    kind,
    sqlite,
    get q() {
      return openTransaction() ?? root;
    },
    inTransaction: () => openTransaction() !== undefined,
    transaction: (work) => run(work, null),
    lockedTransaction: (names, work) => run(work, names),
    close,
  };
}

/**
 * A transaction PostgreSQL kept aborting for conflicts with others, after every retry: the
 * database is too busy right now, which is worth a 503 and a retry, not a 500.
 */
export const isContention = (err: unknown) => RETRYABLE.has(errorCode(err) ?? '');

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** `text` (an error message, say) with the URL's password, as typed or percent-decoded, replaced by ***. */
export function withoutPassword(text: string, url: URL): string {
  if (!url.password) return text;
  return text.split(decodeURIComponent(url.password)).join('***').split(url.password).join('***');
}

/** A database URL with its password replaced by ***: safe to print and log. */
export function redactUrl(url: string): string {
  const copy = new URL(url);
  if (copy.password) copy.password = '***';
  return copy.toString();
}

/** A pg pool whose bigint (int8) values, our times and counts, arrive as numbers as on SQLite. */
function openPool(url: string): Pool {
  const parsers = new TypeOverrides();
  parsers.setTypeParser(types.builtins.INT8, parseInt8);
  return new Pool({
    connectionString: url,
    types: parsers,
    max: 10,
    connectionTimeoutMillis: 5000,
    Client: NulFreeClient,
  });
}

/**
 * PostgreSQL's text cannot hold NUL, and refuses one even as a parameter (SQLite takes it). Input
 * reaches queries from URLs, cookies and forms, where anyone can type %00: rather than a 500, a NUL
 * in a text parameter becomes U+FFFD here, once for every query. A lookup by such a value finds
 * nothing (no stored id or key holds U+FFFD), and stored text keeps its place, visibly.
 */
class NulFreeClient extends Client {}
const query = Client.prototype.query;
NulFreeClient.prototype.query = function (this: Client, ...args: unknown[]) {
  if (Array.isArray(args[1])) args[1] = args[1].map(withoutNul);
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

function withoutNul(value: unknown): unknown {
  if (typeof value === 'string') return value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
  return Array.isArray(value) ? value.map(withoutNul) : value;
}

function parseInt8(text: string): number {
  const n = Number(text);
  // A silently rounded id or size would be worse than a failed query.
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${text} is beyond JavaScript's safe integers`);
  return n;
}

/** Statements kept per connection; the app has far fewer distinct queries than this. */
const STATEMENT_CACHE = 500;

/**
 * Kysely's SQLite dialect on our connection, with two changes: a transaction starts with BEGIN
 * IMMEDIATE (it takes the write lock first, so a transaction that reads and then writes never fails
 * with SQLITE_BUSY halfway when another process writes), and statements are prepared once per SQL
 * text instead of once per query. destroy() leaves the connection open: whoever opened it closes it.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(connection: BetterSqlite3.Database) {
    const statements = new Map<string, BetterSqlite3.Statement>();
    const config: SqliteDialectConfig = {
      database: {
        prepare(sql: string) {
          let statement = statements.get(sql);
          if (!statement) {
            if (statements.size >= STATEMENT_CACHE) statements.clear();
            statement = connection.prepare(sql);
            statements.set(sql, statement);
          }
          return statement;
        },
        close: () => {},
      },
    };
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}
