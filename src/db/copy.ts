import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type Kysely, sql } from 'kysely';
import { Client } from 'pg';
import { openDatabase } from './connection.js';
import { openKysely, redactUrl, withoutPassword } from './database.js';
import { migratePostgres, postgresMigrations } from './migrations-postgres.js';
import type { Database as Tables } from './schema.js';

type TableName = keyof Tables;

/**
 * Every table, parents before children, so each row's foreign keys point at rows already copied.
 * The type check below fails when schema.ts gains a table this list lacks.
 */
export const COPY_ORDER = [
  'users',
  'sessions',
  'invites',
  'images',
  'pending_uploads',
  'storage_deletions',
  'albums',
  'album_images',
  'guest_links',
  'share_links',
  'share_link_images',
  'changes',
  'outbox',
  'audit_log',
  'app_secrets',
  'audit_purge_guard',
  'throttle_entries',
  'job_leases',
  'jobs',
  'access_keys',
] as const satisfies readonly TableName[];
type Missing = Exclude<TableName, (typeof COPY_ORDER)[number]>;
const everyTable: [Missing] extends [never] ? true : Missing = true;
void everyTable;

/** SQLite's full-text index of titles and names (migration 12), which is not copied. */
const SQLITE_SEARCH_TABLES = [
  'images_search',
  'images_search_data',
  'images_search_idx',
  'images_search_docsize',
  'images_search_config',
];

/** Columns each database computes itself (migration 12's taken_sort): never copied. */
const GENERATED: Partial<Record<TableName, string[]>> = { images: ['taken_sort'] };

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters for our widest table. */
const BATCH = 500;

export interface CopyResult {
  /** The URL with its password replaced by ***: safe to print. */
  target: string;
  /** Rows per table, counted in the snapshot and on the target before the copy commits (equal). */
  tables: { name: TableName; source: number; target: number }[];
}

/**
 * Copies the SQLite database at `source` into the empty PostgreSQL database at `url`. The app may be
 * running: the copy reads an online backup (one moment's state, see backup.ts) taken into a temp
 * dir. The target must be empty (no row in any app table, no newer schema); it is migrated, and all
 * rows go in in one transaction: on any failure, including counts that do not match, nothing is
 * left on the target but the (empty) schema. Identity sequences continue after the copied ids.
 */
export async function copyToPostgres(source: string, url: string): Promise<CopyResult> {
  const target = parseTarget(url);
  const safe = redactUrl(target.toString());
  if (!fs.existsSync(source)) throw new CopyError(`There is no database at ${source}.`);
  await probe(url, safe);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3g-copy-'));
  try {
    const snapshot = path.join(dir, 'gallery.db');
    const live = new Database(source, { readonly: true, fileMustExist: true });
    try {
      live.pragma('busy_timeout = 5000');
      await live.backup(snapshot);
    } finally {
      live.close();
    }
    // Brings an install an app version behind up to our schema (on the copy only).
    const from = openDatabase(snapshot);
    const to = openKysely({ url });
    try {
      await refuseUnlessEmpty(to, safe);
      await migratePostgres(to);
      const tables = await copyRows(from, to, safe);
      return { target: safe, tables };
    } catch (err) {
      throw scrub(err, target);
    } finally {
      from.close();
      await to.destroy();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function copyRows(
  from: Database.Database,
  to: Kysely<Tables>,
  safe: string,
): Promise<CopyResult['tables']> {
  // The search index (FTS5: a virtual table and its shadow tables) is SQLite's own, rebuilt from the
  // images by triggers; PostgreSQL indexes the same columns itself (migration 12).
  const known = new Set<string>([...COPY_ORDER, ...SQLITE_SEARCH_TABLES]);
  const unknown = (
    from
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[]
  ).filter((name) => !known.has(name));
  if (unknown.length > 0)
    throw new CopyError(`The SQLite database has tables this version does not know: ${unknown.join(', ')}.`);
  // AUTOINCREMENT never reuses an id, even of a deleted row: the sequences go on from there.
  const used = new Map(
    (from.prepare('SELECT name, seq FROM sqlite_sequence').all() as { name: string; seq: number }[]).map(
      (r) => [r.name, r.seq],
    ),
  );

  return to.transaction().execute(async (trx) => {
    // Nobody writes to the target until the copy commits; and it must still be empty now.
    await sql.raw(`LOCK TABLE ${COPY_ORDER.map((t) => `"${t}"`).join(', ')} IN EXCLUSIVE MODE`).execute(trx);
    await refuseUnlessEmpty(trx, safe);
    const counts: CopyResult['tables'] = [];
    for (const name of COPY_ORDER) {
      let batch: Record<string, unknown>[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        // Rows as SQLite returns them: the columns are named and typed alike on both (db-dialects.test.ts).
        await trx
          .insertInto(name)
          .values(batch as never)
          .execute();
        batch = [];
      };
      for (const row of from.prepare(`SELECT * FROM "${name}"`).iterate() as Iterable<
        Record<string, unknown>
      >) {
        // Generated columns are computed by the target itself (it refuses a value for them).
        for (const column of GENERATED[name] ?? []) delete row[column];
        batch.push(row);
        if (batch.length >= BATCH) await flush();
      }
      await flush();
      const source = from.prepare(`SELECT count(*) FROM "${name}"`).pluck().get() as number;
      const target = await countRows(trx, name);
      if (source !== target)
        throw new CopyError(
          `${name}: ${source} rows in SQLite but ${target} on PostgreSQL; nothing was copied.`,
        );
      counts.push({ name, source, target });
    }
    const { rows: identities } = await sql<{ table_name: string; column_name: string }>`
      SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND is_identity = 'YES'`.execute(trx);
    for (const { table_name, column_name } of identities) {
      const { rows } = await sql<{ max: number | null }>`
        SELECT max(${sql.ref(column_name)}) AS max FROM ${sql.table(table_name)}`.execute(trx);
      const last = Math.max(rows[0]?.max ?? 0, used.get(table_name) ?? 0);
      if (last > 0)
        await sql`SELECT setval(pg_get_serial_sequence(${table_name}, ${column_name}), ${last})`.execute(trx);
    }
    return counts;
  });
}

async function countRows(db: Kysely<Tables>, name: TableName): Promise<number> {
  const row = await db
    .selectFrom(name)
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Refuses a target with any row in any app table, or a schema newer than ours. */
async function refuseUnlessEmpty(db: Kysely<Tables>, safe: string): Promise<void> {
  const { rows } = await sql<{ name: string; present: string | null }>`
    SELECT name, to_regclass(quote_ident(name))::text AS present
    FROM unnest(${[...COPY_ORDER, 'schema_version']}::text[]) AS name`.execute(db);
  const present = new Set(rows.filter((r) => r.present !== null).map((r) => r.name));
  if (present.has('schema_version')) {
    const version = await sql<{ version: number }>`SELECT version FROM schema_version`.execute(db);
    const current = version.rows[0]?.version ?? 0;
    if (current > postgresMigrations.length)
      throw new CopyError(
        `${safe} has schema version ${current}, newer than this app's (${postgresMigrations.length}); nothing was copied.`,
      );
  }
  const full: string[] = [];
  for (const name of COPY_ORDER) {
    if (present.has(name) && (await countRows(db, name)) > 0) full.push(name);
  }
  if (full.length > 0)
    throw new CopyError(
      `${safe} is not empty (rows in ${full.join(', ')}); db:copy only fills an empty database. Nothing was copied.`,
    );
}

function parseTarget(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CopyError('--to must be a URL like postgres://user:password@host:5432/database.');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
    throw new CopyError(
      `--to must be a postgres:// URL (got ${parsed.protocol}//…), like postgres://user:password@host:5432/database.`,
    );
  return parsed;
}

/** Connects once with a time limit, so an unreachable server is a clear error, not a hang. */
async function probe(url: string, safe: string): Promise<void> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // An error after connecting (the server going away) must not crash the process unhandled.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw scrub(
      new CopyError(`Cannot reach PostgreSQL at ${safe}: ${reason || 'connection failed'}`),
      new URL(url),
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** An error whose message cannot carry the URL's password, whatever produced it. */
function scrub(err: unknown, url: URL): unknown {
  if (!(err instanceof Error)) return err;
  const clean = withoutPassword(err.message, url);
  if (clean === err.message) return err;
  return err instanceof CopyError ? new CopyError(clean) : new Error(clean);
}

/** A copy refused or failed for a reason the user can act on; its message says which. */
export class CopyError extends Error {}
