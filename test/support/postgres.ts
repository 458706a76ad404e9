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
