import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { redactUrl } from '../../src/db/database.js';

/** The server tests make their databases on; our machines and CI run one on 127.0.0.1:5432. */
const testServerUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface FreshPostgres {
  /** A postgres:// URL of a new, empty database of its own. */
  url: string;
  /** Ends every connection to it and drops it. */
  drop(): Promise<void>;
}

/**
 * Whether a PostgreSQL answers at TEST_DATABASE_URL. Without one the PostgreSQL tests skip, except
 * under CI, where a missing server must turn the run red: then this throws.
 */
export async function postgresIsReachable(): Promise<boolean> {
  try {
    await withServer(testServerUrl, async () => {});
    return true;
  } catch (err) {
    if (process.env.CI) {
      throw new Error(`CI needs a PostgreSQL at ${redactUrl(testServerUrl)} (TEST_DATABASE_URL)`, {
        cause: err,
      });
    }
    return false;
  }
}

/** A new database on `serverUrl` (the tests' server unless given), named `<prefix>_<pid>_<random>`. */
export async function freshPostgres(serverUrl = testServerUrl, prefix = 's3g_test'): Promise<FreshPostgres> {
  const name = `${prefix}_${process.pid}_${randomBytes(6).toString('hex')}`;
  await withServer(serverUrl, (client) => client.query(`CREATE DATABASE ${escapeIdentifier(name)}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withServer(serverUrl, async (client) => {
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
          name,
        ]);
        await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)}`);
      }),
  };
}

async function withServer<T>(serverUrl: string, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: serverUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** The databases this test file's apps used: each is emptied when its app closes, and taken again. */
const emptied: FreshPostgres[] = [];
const made: FreshPostgres[] = [];
/** What empties a database, by URL: its tables and sequences, read once (every app migrates alike). */
const emptiers = new Map<string, string>();

/**
 * The statements that empty the database `client` is on: every table but schema_version, rows
 * deleted, and every sequence restarted. DELETE, not TRUNCATE: a test's few rows go in a
 * millisecond, where TRUNCATE makes new files for every table (60 ms an app). The replica role
 * leaves triggers unfired: the audit log's refusal of deletes, and the foreign keys' checks (so
 * the order of the tables does not matter).
 */
async function emptyingSql(client: Client): Promise<string> {
  const tables = await client.query<{ name: string }>(
    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'",
  );
  const sequences = await client.query<{ name: string }>(
    "SELECT sequencename AS name FROM pg_sequences WHERE schemaname = 'public'",
  );
  return [
    'SET session_replication_role = replica',
    ...tables.rows.map((r) => `DELETE FROM ${escapeIdentifier(r.name)}`),
    ...sequences.rows.map((r) => `ALTER SEQUENCE ${escapeIdentifier(r.name)} RESTART`),
  ].join(';\n');
}

/**
 * A database of this test file's own for one test app: one an earlier app of the file used and
 * left empty (every table but schema_version emptied, sequences restarted), else a new one.
 * Migrating a new database costs far more than emptying one. `release` empties it for the next
 * app; dropPostgresOfThisFile (the postgres project's setup file) drops them all when the file ends.
 */
export async function postgresForTest(): Promise<{ url: string; release(): Promise<void> }> {
  let db = emptied.pop();
  if (!db) {
    db = await freshPostgres();
    made.push(db);
  }
  const taken = db;
  return {
    url: taken.url,
    async release() {
      await withServer(taken.url, async (client) => {
        // A connection a test left open would hold the emptying up.
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
        );
        let emptying = emptiers.get(taken.url);
        if (emptying === undefined) {
          emptying = await emptyingSql(client);
          emptiers.set(taken.url, emptying);
        }
        await client.query(emptying);
      });
      emptied.push(taken);
    },
  };
}

/** Drops every database postgresForTest made in this test file. */
export async function dropPostgresOfThisFile(): Promise<void> {
  const all = made.splice(0);
  emptied.length = 0;
  emptiers.clear();
  await Promise.all(all.map((db) => db.drop()));
}
