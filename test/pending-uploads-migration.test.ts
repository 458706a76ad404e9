import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/connection.js';
import { migrations } from '../src/db/migrations.js';

describe('the pending uploads migration', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the uploads pending before it, and a deleted image no longer removes its replacement rows', () => {
    dir = mkdtempSync(path.join(tmpdir(), 's3g-migrate-'));
    const file = path.join(dir, 'gallery.db');
    // A database as the previous release left it: the first three migrations, with one pending replacement.
    const old = new Database(file);
    old.pragma('foreign_keys = ON');
    for (const [i, sql] of migrations.slice(0, 3).entries()) {
      old.exec(sql);
      old.pragma(`user_version = ${i + 1}`);
    }
    old
      .prepare('INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)')
      .run('u1', 'a@example.com', 'x', 'member', 1);
    old
      .prepare(
        `INSERT INTO images (id, owner_id, title, original_name, original_key, display_key, thumb_key, content_type,
           bytes, width, height, created_at, updated_at) VALUES ('i1', 'u1', 't', 'n', 'o', 'd', 'th', 'image/png', 1, 1, 1, 1, 1)`,
      )
      .run();
    old
      .prepare(
        `INSERT INTO pending_uploads (key, owner_id, original_name, replaces_image_id, created_at, expires_at)
         VALUES ('users/u1/originals/k', 'u1', 'new.png', 'i1', 1, 2)`,
      )
      .run();
    old.close();

    const db = openDatabase(file);
    expect(db.prepare('SELECT * FROM pending_uploads').all()).toEqual([
      {
        key: 'users/u1/originals/k',
        owner_id: 'u1',
        original_name: 'new.png',
        replaces_image_id: 'i1',
        max_bytes: 0,
        is_form: 0,
        // Rows from before it could be a page form's key: they copy before they answer, as then.
        is_shared: 1,
        created_at: 1,
        expires_at: 2,
        final_key: null,
        claimed_at: null,
        closed_at: null,
        etag: null,
        image_id: null,
        // Later migrations' columns: an upload in parts, an upload through a guest link.
        multipart_id: null,
        guest_link_id: null,
        guest_visit: null,
        guest_name: null,
      },
    ]);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.prepare("DELETE FROM images WHERE id = 'i1'").run();
    expect(db.prepare('SELECT count(*) FROM pending_uploads').pluck().get()).toBe(1);
    // Deleting the owner still takes their uploads with them.
    db.prepare("DELETE FROM users WHERE id = 'u1'").run();
    expect(db.prepare('SELECT count(*) FROM pending_uploads').pluck().get()).toBe(0);
    db.close();
  });
});
