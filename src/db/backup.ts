import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/** The most pages one backup step may copy (SQLite's limit): the rest of the database at once. */
const ALL_PAGES = 0x7fffffff;

/**
 * A consistent copy of a SQLite database that may be in use: SQLite's online backup API copies it
 * in one read transaction, so the copy is one moment's state, never a mix. It goes to a temp file
 * beside `target`, is checked, and is renamed into place: a failed or interrupted backup leaves no
 * file at `target`, and an existing file is never replaced.
 */
export async function backupDatabase(
  source: string,
  target: string,
): Promise<{ bytes: number; tables: Record<string, number> }> {
  if (!fs.existsSync(source)) throw new BackupError(`There is no database at ${source}.`);
  if (fs.existsSync(target)) throw new BackupError(`${target} already exists; name a new file.`);
  const partial = path.join(path.dirname(target), `.${path.basename(target)}.partial`);
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // Every page in one step (a read transaction): in steps of 100 pages (the default), a steady
    // writer (the app, serving logins) can restart the copy again and again before it ends.
    await db.backup(partial, { progress: () => ALL_PAGES });
  } finally {
    db.close();
  }
  try {
    // The copy carries the source's WAL mode: one self-contained file is what a backup should be.
    const copy = new Database(partial);
    try {
      copy.pragma('journal_mode = DELETE');
      const integrity = copy.pragma('integrity_check', { simple: true });
      if (integrity !== 'ok')
        throw new BackupError(`The copy failed its integrity check: ${String(integrity)}`);
      const names = copy
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .pluck()
        .all() as string[];
      const tables = Object.fromEntries(
        names.map((name) => [name, copy.prepare(`SELECT count(*) FROM "${name}"`).pluck().get() as number]),
      );
      fs.linkSync(partial, target); // fails if target appeared meanwhile, instead of replacing it
      return { bytes: fs.statSync(target).size, tables };
    } finally {
      copy.close();
    }
  } finally {
    for (const leftover of [partial, `${partial}-wal`, `${partial}-shm`])
      fs.rmSync(leftover, { force: true });
  }
}

/** A backup refused for a reason the user can fix; its message says which. */
export class BackupError extends Error {}
