import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/connection.js';
import { migrations } from '../src/db/migrations.js';

describe('database', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 's3g-db-'));
    dirs.push(dir);
    return path.join(dir, 'nested', 'gallery.db');
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates the file, applies every migration and turns on WAL and foreign keys', () => {
    const db = openDatabase(fresh());
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['users', 'sessions', 'invites']));
    db.close();
  });

  it('reopens an existing database without re-running migrations and keeps its rows', () => {
    const file = fresh();
    const first = openDatabase(file);
    first
      .prepare('INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)')
      .run('u1', 'a@example.com', 'x', 'admin', 1);
    first.close();
    const second = openDatabase(file);
    expect(second.prepare('SELECT count(*) FROM users').pluck().get()).toBe(1);
    second.close();
  });

  it('refuses a database written by a newer version of the app', () => {
    const file = fresh();
    const db = openDatabase(file);
    db.pragma(`user_version = ${migrations.length + 1}`);
    db.close();
    expect(() => openDatabase(file)).toThrow(/newer than this app/);
  });
});
