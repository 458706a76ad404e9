import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { Pool, TypeOverrides, types } from 'pg';
import type { Database } from './schema.js';

/** Where the metadata lives: the app's open SQLite connection, or a postgres:// URL. */
export type KyselyTarget = { sqlite: BetterSqlite3.Database } | { url: string };

/**
 * A typed query builder on either dialect. On SQLite it shares the caller's connection (so the
 * app's prepared statements and Kysely see the same transactions while code moves over) and
 * destroy() leaves that connection open: whoever opened it closes it. On PostgreSQL it owns a
 * pool, which destroy() ends.
 */
export function openKysely(target: KyselyTarget): Kysely<Database> {
  if ('sqlite' in target) {
    const connection = target.sqlite;
    return new Kysely<Database>({
      dialect: new SqliteDialect({
        database: { prepare: (sql: string) => connection.prepare(sql), close: () => {} },
      }),
    });
  }
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: openPool(target.url) }) });
}

/** A pg pool whose bigint (int8) values, our times and counts, arrive as numbers as on SQLite. */
function openPool(url: string): Pool {
  const parsers = new TypeOverrides();
  parsers.setTypeParser(types.builtins.INT8, parseInt8);
  return new Pool({ connectionString: url, types: parsers });
}

function parseInt8(text: string): number {
  const n = Number(text);
  // A silently rounded id or size would be worse than a failed query.
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${text} is beyond JavaScript's safe integers`);
  return n;
}
