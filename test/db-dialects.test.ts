import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { type Kysely, type Selectable, sql } from 'kysely';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/connection.js';
import { openKysely } from '../src/db/database.js';
import { migrations } from '../src/db/migrations.js';
import { migratePostgres, postgresMigrations } from '../src/db/migrations-postgres.js';
import { type Database, IMAGE_COLUMNS } from '../src/db/schema.js';
import { freshPostgres, postgresIsReachable } from './support/postgres.js';

// Without a server the PostgreSQL half skips; under CI this throws, failing the file.
const hasPostgres = await postgresIsReachable();

interface Opened {
  db: Kysely<Database>;
  /** Runs the dialect's migrations again on the same database. */
  migrateAgain(): Promise<void>;
  close(): Promise<void>;
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sqliteFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 's3g-dialects-'));
  tempDirs.push(dir);
  return path.join(dir, 'gallery.db');
}

async function openSqlite(): Promise<Opened & { connection: BetterSqlite3.Database }> {
  const file = sqliteFile();
  let connection = openDatabase(file);
  let db = openKysely({ sqlite: connection });
  return {
    get connection() {
      return connection;
    },
    get db() {
      return db;
    },
    async migrateAgain() {
      await db.destroy();
      connection.close();
      connection = openDatabase(file);
      db = openKysely({ sqlite: connection });
    },
    async close() {
      await db.destroy();
      connection.close();
    },
  };
}

async function openPostgres(): Promise<Opened & { url: string }> {
  const server = await freshPostgres();
  const db = openKysely({ url: server.url });
  await migratePostgres(db);
  return {
    db,
    url: server.url,
    migrateAgain: () => migratePostgres(db),
    async close() {
      await db.destroy();
      await server.drop();
    },
  };
}

const dialects = [
  { name: 'SQLite', open: openSqlite, skip: false },
  { name: 'PostgreSQL', open: openPostgres, skip: !hasPostgres },
];

// Times past 2^31 and a size past 2^32, so a bigint read back as a string or a 32-bit column fails.
const T = 1_767_225_600_123;
const user: Selectable<Database['users']> = {
  id: 'u1',
  email: 'Ada@Example.com',
  password_hash: '$argon2id$hash',
  role: 'admin',
  is_disabled: 1,
  created_at: T,
  last_login_at: T + 1,
  quota_bytes: 5_000_000_000,
  quota_images: 1000,
};
const session: Selectable<Database['sessions']> = {
  id: 's1',
  secret_hash: Buffer.from([0, 1, 2, 254, 255]),
  user_id: 'u1',
  created_at: T,
  refreshed_at: T + 2,
  expires_at: T + 3,
  last_seen_at: T + 4,
  ip: '2001:db8::1',
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64) “quoted” ✓',
};
const invite: Selectable<Database['invites']> = {
  id: 'i1',
  token_hash: 'ab12',
  role: 'viewer',
  created_by: 'u1',
  created_at: T,
  expires_at: T + 4,
  used_at: T + 5,
  used_by: 'u1',
  revoked_at: T + 6,
};
const image: Selectable<Database['images']> = {
  id: 'img1',
  owner_id: 'u1',
  title: 'Sunset – über “quotes” 🌅',
  original_name: 'IMG_0001.JPG',
  original_key: 'originals/u1/img1',
  display_key: 'display/u1/img1.webp',
  thumb_key: 'thumbs/u1/img1.webp',
  content_type: 'image/jpeg',
  bytes: 5_000_000_001,
  width: 6000,
  height: 4000,
  taken_at: T - 10,
  created_at: T,
  updated_at: T + 7,
  is_shared: 1,
  state: 'failed',
  failure: 'Could not be read – “damaged” 🌅',
  placeholder: 'YJqGPQw7sFlslqhFafOsc3tocVW3',
  taken_sort: T - 10,
  exif: '{"make":"Canon","iso":200}',
  staged_key: 'users/u1/uploads/k1',
  staged_etag: '"9b2cf535f27731c974343645a3985328"',
  trashed_at: T + 9,
  share_copy_key: 'users/u1/copies/img1/c1.jpg',
  original_etag: '9b2cf535f27731c974343645a3985328',
  guest_link_id: 'gl1',
  guest_visit: 'c0ffee',
  guest_name: 'Bo',
};
const pendingUpload: Selectable<Database['pending_uploads']> = {
  key: 'uploads/u1/p1',
  owner_id: 'u1',
  original_name: 'p1.png',
  replaces_image_id: 'img1',
  max_bytes: 3_000_000_000,
  is_form: 1,
  is_shared: 1,
  created_at: T,
  expires_at: T + 8,
  final_key: 'originals/u1/p1',
  claimed_at: T + 9,
  closed_at: T + 10,
  etag: '"0123abcd"',
  image_id: 'img1',
  multipart_id: 'Mz1.upload-id',
  guest_link_id: 'gl1',
  guest_visit: 'c0ffee',
  guest_name: 'Ana “the aunt”',
};
const guestLink: Selectable<Database['guest_links']> = {
  id: 'gl1',
  owner_id: 'u1',
  token_hash: 'f00d',
  label: 'Wedding “Ana & Bo”',
  message: 'Send us yours!\nThank you.',
  max_files: 200,
  max_bytes: 5_000_000_000,
  max_file_bytes: 30_000_000,
  password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
  album_id: 'a1',
  ask_name: 1,
  notify_owner: 0,
  created_at: T,
  expires_at: T + 20,
  revoked_at: T + 21,
  last_used_at: T + 22,
  files_accepted: 7,
  bytes_accepted: 4_000_000_000,
};
const storageDeletion: Selectable<Database['storage_deletions']> = {
  key: 'originals/u1/gone',
  queued_at: T,
  attempts: 3,
  last_error: 'SlowDown',
};
const shareLink: Selectable<Database['share_links']> = {
  id: 'l1',
  token_hash: 'cd34',
  owner_id: 'u1',
  password_hash: '$argon2id$share',
  allow_download: 1,
  download_original: 1,
  created_at: T,
  expires_at: T + 11,
  revoked_at: T + 12,
  view_count: 42,
  last_viewed_at: T + 13,
  album_id: 'a1',
};
const album: Selectable<Database['albums']> = {
  id: 'a1',
  owner_id: 'u1',
  name: 'Holidays',
  cover_image_id: 'img1',
  created_at: T,
  updated_at: T + 21,
};
const albumImage: Selectable<Database['album_images']> = {
  album_id: 'a1',
  image_id: 'img1',
  added_at: T + 22,
};
const shareLinkImage: Selectable<Database['share_link_images']> = {
  link_id: 'l1',
  image_id: 'img1',
  position: 7,
};
const change: Omit<Selectable<Database['changes']>, 'id'> = {
  at: T,
  actor_id: 'u1',
  actor_email: 'ada@example.com',
  action: 'upload',
  image_id: 'img1',
  summary: 'uploaded Sunset',
};
const outboxRow: Omit<Selectable<Database['outbox']>, 'id' | 'change_id'> = {
  channel: 'webhook',
  recipient: 'https://hooks.example/x',
  created_at: T,
  attempts: 2,
  next_attempt_at: T + 14,
  sent_at: T + 15,
  last_error: 'HTTP 502',
  claimed_by: '0f8e2f43-7a3c-4a1e-9d5b-3c2a1b0e9f87',
  claimed_until: T + 16,
};
const auditRow: Omit<Selectable<Database['audit_log']>, 'id'> = {
  at: T,
  actor_id: 'u1',
  actor_email: 'ada@example.com',
  action: 'login',
  target: 'u1',
  detail: 'from the web',
  ip: '2001:db8::1',
};
const appSecret: Selectable<Database['app_secrets']> = {
  name: 'session-key',
  value: Buffer.from('00ff10ee', 'hex'),
  created_at: T,
};
// A count that a 4-byte float would round, so a `real` column on PostgreSQL fails.
const throttleEntry: Selectable<Database['throttle_entries']> = {
  scope: 'login.account',
  key: 'ada@example.com',
  count: 20 - 1 / 3,
  updated_at: T,
  last_failure_at: T - 16,
  expires_at: T + 17,
};
const jobLease: Selectable<Database['job_leases']> = {
  name: 'upload-sweep',
  held_by: '6b1d0c1e-2f9a-4c8e-8a57-0e4d3f2a9b61',
  held_until: T + 18,
};
const job: Omit<Selectable<Database['jobs']>, 'id'> = {
  kind: 'renditions',
  image_id: 'img1',
  owner_id: 'u1',
  turn: 0,
  original_key: 'originals/u1/img1',
  created_at: T,
  run_at: T + 19,
  attempts: 2,
  claimed_by: '6b1d0c1e-2f9a-4c8e-8a57-0e4d3f2a9b61',
  claimed_until: T + 20,
  last_error: 'the bucket did not answer',
};

/** Inserts one row of every table with every column set, in an order the foreign keys accept. */
async function insertEveryTable(db: Kysely<Database>) {
  await db.insertInto('users').values(user).execute();
  await db.insertInto('sessions').values(session).execute();
  await db.insertInto('invites').values(invite).execute();
  // taken_sort is generated (coalesce(taken_at, created_at)): read back, never written.
  const { taken_sort: _generated, ...imageColumns } = image;
  await db.insertInto('images').values(imageColumns).execute();
  await db.insertInto('pending_uploads').values(pendingUpload).execute();
  await db.insertInto('storage_deletions').values(storageDeletion).execute();
  await db.insertInto('albums').values(album).execute();
  await db.insertInto('album_images').values(albumImage).execute();
  await db.insertInto('guest_links').values(guestLink).execute();
  await db.insertInto('share_links').values(shareLink).execute();
  await db.insertInto('share_link_images').values(shareLinkImage).execute();
  const { id: changeId } = await db
    .insertInto('changes')
    .values(change)
    .returning('id')
    .executeTakeFirstOrThrow();
  const { id: outboxId } = await db
    .insertInto('outbox')
    .values({ ...outboxRow, change_id: changeId })
    .returning('id')
    .executeTakeFirstOrThrow();
  const { id: auditId } = await db
    .insertInto('audit_log')
    .values(auditRow)
    .returning('id')
    .executeTakeFirstOrThrow();
  await db.insertInto('app_secrets').values(appSecret).execute();
  await db.insertInto('audit_purge_guard').values({ id: 1, cutoff: T }).execute();
  await db.insertInto('throttle_entries').values(throttleEntry).execute();
  await db.insertInto('job_leases').values(jobLease).execute();
  await db.insertInto('jobs').values(job).execute();
  return { changeId, outboxId, auditId };
}

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`the data layer on ${dialect.name}`, () => {
    const open: Opened[] = [];
    const fresh = async () => {
      const opened = await dialect.open();
      open.push(opened);
      return opened;
    };
    afterEach(async () => {
      for (const opened of open.splice(0)) await opened.close();
    });

    it('reads back every column of every table as schema.ts types it', async () => {
      const { db } = await fresh();
      const ids = await insertEveryTable(db);
      expect(ids).toEqual({ changeId: 1, outboxId: 1, auditId: 1 });

      expect(await db.selectFrom('users').selectAll().execute()).toEqual([user]);
      expect(await db.selectFrom('sessions').selectAll().execute()).toEqual([session]);
      expect(await db.selectFrom('invites').selectAll().execute()).toEqual([invite]);
      expect(await db.selectFrom('images').select(IMAGE_COLUMNS).execute()).toEqual([image]);
      expect(await db.selectFrom('pending_uploads').selectAll().execute()).toEqual([pendingUpload]);
      expect(await db.selectFrom('guest_links').selectAll().execute()).toEqual([guestLink]);
      expect(await db.selectFrom('storage_deletions').selectAll().execute()).toEqual([storageDeletion]);
      expect(await db.selectFrom('share_links').selectAll().execute()).toEqual([shareLink]);
      expect(await db.selectFrom('share_link_images').selectAll().execute()).toEqual([shareLinkImage]);
      expect(await db.selectFrom('changes').selectAll().execute()).toEqual([{ ...change, id: 1 }]);
      expect(await db.selectFrom('outbox').selectAll().execute()).toEqual([
        { ...outboxRow, id: 1, change_id: 1 },
      ]);
      expect(await db.selectFrom('audit_log').selectAll().execute()).toEqual([{ ...auditRow, id: 1 }]);
      expect(await db.selectFrom('app_secrets').selectAll().execute()).toEqual([appSecret]);
      expect(await db.selectFrom('audit_purge_guard').selectAll().execute()).toEqual([{ id: 1, cutoff: T }]);
      expect(await db.selectFrom('throttle_entries').selectAll().execute()).toEqual([throttleEntry]);
      expect(await db.selectFrom('job_leases').selectAll().execute()).toEqual([jobLease]);
      expect(await db.selectFrom('jobs').selectAll().execute()).toEqual([{ ...job, id: 1 }]);
      expect(await db.selectFrom('albums').selectAll().execute()).toEqual([album]);
      expect(await db.selectFrom('album_images').selectAll().execute()).toEqual([albumImage]);
      const { n } = await db
        .selectFrom('images')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(n).toBe(1);
    });

    it('fills in the same defaults and identity ids', async () => {
      const { db } = await fresh();
      await db
        .insertInto('users')
        .values({ id: 'u2', email: 'b@example.com', password_hash: 'h', role: 'member', created_at: T })
        .execute();
      expect(
        await db.selectFrom('users').select(['is_disabled', 'quota_bytes', 'last_login_at']).execute(),
      ).toEqual([{ is_disabled: 0, quota_bytes: null, last_login_at: null }]);
      const {
        is_shared,
        taken_at,
        state,
        failure,
        placeholder,
        taken_sort,
        exif,
        staged_key,
        staged_etag,
        trashed_at,
        share_copy_key,
        original_etag,
        ...required
      } = image;
      await db
        .insertInto('images')
        .values({ ...required, owner_id: 'u2', taken_at: null })
        .execute();
      // Without a date taken, the timeline places an image at its upload time.
      expect(
        await db
          .selectFrom('images')
          .select(['is_shared', 'state', 'failure', 'taken_sort', 'exif', 'staged_key'])
          .execute(),
      ).toEqual([
        { is_shared: 0, state: 'ready', failure: null, taken_sort: T, exif: null, staged_key: null },
      ]);
      await db
        .insertInto('pending_uploads')
        .values({ key: 'k', owner_id: 'u2', original_name: 'a.png', created_at: T, expires_at: T + 1 })
        .execute();
      expect(
        await db
          .selectFrom('pending_uploads')
          .select(['max_bytes', 'is_form', 'is_shared', 'final_key'])
          .execute(),
      ).toEqual([{ max_bytes: 0, is_form: 0, is_shared: 0, final_key: null }]);
      await db.insertInto('storage_deletions').values({ key: 'k', queued_at: T }).execute();
      expect(await db.selectFrom('storage_deletions').select('attempts').execute()).toEqual([
        { attempts: 0 },
      ]);
      await db
        .insertInto('share_links')
        .values({ id: 'l', token_hash: 't', owner_id: 'u2', created_at: T })
        .execute();
      expect(await db.selectFrom('share_links').select(['allow_download', 'view_count']).execute()).toEqual([
        { allow_download: 0, view_count: 0 },
      ]);
      const added = [];
      for (let i = 0; i < 3; i++) {
        added.push(await db.insertInto('changes').values(change).returning('id').executeTakeFirstOrThrow());
      }
      expect(added).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
      await db
        .insertInto('outbox')
        .values({
          channel: 'email',
          recipient: 'a@example.com',
          change_id: 1,
          created_at: T,
          next_attempt_at: T,
        })
        .execute();
      expect(
        await db
          .selectFrom('outbox')
          .select(['id', 'attempts', 'sent_at', 'claimed_by', 'claimed_until'])
          .execute(),
      ).toEqual([{ id: 1, attempts: 0, sent_at: null, claimed_by: null, claimed_until: null }]);
    });

    it('finds an email address whatever its case, and refuses a second account differing only in case', async () => {
      const { db } = await fresh();
      await db.insertInto('users').values(user).execute();
      // As the users repository looks an address up: lower(email) against the ASCII-lowercased input.
      const lookUp = (typed: string) =>
        db
          .selectFrom('users')
          .select('id')
          .where(
            sql<string>`lower(email)`,
            '=',
            typed.replace(/[A-Z]+/g, (l) => l.toLowerCase()),
          )
          .execute();
      expect(await lookUp('ADA@example.COM')).toEqual([{ id: 'u1' }]);
      // No other spelling finds it: fullwidth letters, an invisible soft hyphen, a Kelvin sign.
      for (const other of ['ａｄａ@example.com', 'a\u00ADda@example.com', 'ada@example.co\u212A'])
        expect(await lookUp(other), other).toEqual([]);
      await expect(
        db
          .insertInto('users')
          .values({ ...user, id: 'u2', email: 'ada@EXAMPLE.com' })
          .execute(),
      ).rejects.toThrow(/unique/i);
    });

    it('refuses values outside the CHECK constraints', async () => {
      const { db } = await fresh();
      await expect(
        db
          .insertInto('users')
          .values({ ...user, role: 'owner' as 'admin' })
          .execute(),
      ).rejects.toThrow(/check/i);
      await expect(
        db
          .insertInto('users')
          .values({ ...user, is_disabled: 2 as 1 })
          .execute(),
      ).rejects.toThrow(/check/i);
      await db.insertInto('users').values(user).execute();
      await expect(
        db
          .insertInto('pending_uploads')
          .values({ ...pendingUpload, max_bytes: -1 })
          .execute(),
      ).rejects.toThrow(/check/i);
      await expect(
        db
          .insertInto('audit_purge_guard')
          .values({ id: 2 as 1, cutoff: T })
          .execute(),
      ).rejects.toThrow(/check/i);
      await expect(
        db
          .insertInto('throttle_entries')
          .values({ ...throttleEntry, count: -1 })
          .execute(),
      ).rejects.toThrow(/check/i);
    });

    it('cascades and nulls references as the foreign keys say', async () => {
      const { db } = await fresh();
      await insertEveryTable(db);
      await expect(
        db
          .insertInto('sessions')
          .values({ ...session, id: 's2', user_id: 'nobody' })
          .execute(),
      ).rejects.toThrow(/foreign key/i);
      await db.deleteFrom('images').where('id', '=', 'img1').execute();
      // pending_uploads.replaces_image_id has had no foreign key since migration 4: the row stays.
      expect(await db.selectFrom('pending_uploads').select('replaces_image_id').execute()).toEqual([
        { replaces_image_id: 'img1' },
      ]);
      expect(await db.selectFrom('share_link_images').selectAll().execute()).toEqual([]);
      // An image deleted leaves its albums and stops being a cover; an album deleted leaves its links, showing nothing.
      expect(await db.selectFrom('album_images').selectAll().execute()).toEqual([]);
      expect(await db.selectFrom('albums').select('cover_image_id').execute()).toEqual([
        { cover_image_id: null },
      ]);
      await db.deleteFrom('albums').where('id', '=', 'a1').execute();
      expect(await db.selectFrom('share_links').select('album_id').execute()).toEqual([{ album_id: null }]);
      await db
        .insertInto('users')
        .values({ ...user, id: 'u2', email: 'b@example.com' })
        .execute();
      await db.updateTable('invites').set({ created_by: 'u2' }).execute();
      await db.deleteFrom('users').where('id', '=', 'u1').execute();
      expect(await db.selectFrom('sessions').selectAll().execute()).toEqual([]);
      expect(await db.selectFrom('pending_uploads').selectAll().execute()).toEqual([]);
      expect(await db.selectFrom('share_links').selectAll().execute()).toEqual([]);
      expect(await db.selectFrom('invites').select(['created_by', 'used_by']).execute()).toEqual([
        { created_by: 'u2', used_by: null },
      ]);
    });

    it('keeps the audit log append-only except for rows older than the purge guard’s cut-off', async () => {
      const { db } = await fresh();
      for (const at of [T - 2, T - 1, T])
        await db
          .insertInto('audit_log')
          .values({ ...auditRow, at })
          .execute();
      await expect(db.updateTable('audit_log').set({ detail: 'edited' }).execute()).rejects.toThrow(
        /append-only/,
      );
      await expect(db.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only/);

      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('audit_purge_guard')
          .values({ id: 1, cutoff: T - 1 })
          .execute();
        await trx
          .deleteFrom('audit_log')
          .where('at', '<', T - 1)
          .execute();
        await trx.deleteFrom('audit_purge_guard').execute();
      });
      expect(await db.selectFrom('audit_log').select('at').orderBy('at').execute()).toEqual([
        { at: T - 1 },
        { at: T },
      ]);
      // Not older than the cut-off: refused even while the guard is up.
      await expect(
        db.transaction().execute(async (trx) => {
          await trx
            .insertInto('audit_purge_guard')
            .values({ id: 1, cutoff: T - 1 })
            .execute();
          await trx
            .deleteFrom('audit_log')
            .where('at', '=', T - 1)
            .execute();
        }),
      ).rejects.toThrow(/append-only/);
      expect(await db.selectFrom('audit_purge_guard').selectAll().execute()).toEqual([]);
      if (dialect.name === 'PostgreSQL') {
        await expect(sql`TRUNCATE audit_log`.execute(db)).rejects.toThrow(/append-only/);
      }
      expect(await db.selectFrom('audit_log').select('at').orderBy('at').execute()).toHaveLength(2);
    });

    it('runs its migrations a second time as a no-op that keeps every row', async () => {
      const opened = await fresh();
      await insertEveryTable(opened.db);
      await opened.migrateAgain();
      expect(await opened.db.selectFrom('users').selectAll().execute()).toEqual([user]);
      expect(await opened.db.selectFrom('audit_log').select('id').execute()).toEqual([{ id: 1 }]);
    });
  });
}

describe.skipIf(!hasPostgres)('PostgreSQL migrations', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('leaves the same tables, columns, keys and indexes as the SQLite migrations', async () => {
    const sqlite = await openSqlite();
    cleanups.push(() => sqlite.close());
    const pg = await openPostgres();
    cleanups.push(() => pg.close());
    expect(postgresMigrations).toHaveLength(migrations.length);
    const sqliteSchema = describeSqlite(sqlite.connection);
    expect(Object.keys(sqliteSchema)).toHaveLength(20);
    expect(await describePostgres(pg.db)).toEqual(sqliteSchema);
  });

  it('runs each migration once when two instances start together, and records the version', async () => {
    const server = await freshPostgres();
    const first = openKysely({ url: server.url });
    const second = openKysely({ url: server.url });
    cleanups.push(async () => {
      await first.destroy();
      await second.destroy();
      await server.drop();
    });
    await Promise.all([migratePostgres(first), migratePostgres(second)]);
    const { rows } = await sql<{ version: number }>`SELECT version FROM schema_version`.execute(first);
    expect(rows).toEqual([{ version: postgresMigrations.length }]);
    await migratePostgres(first);
    expect((await sql`SELECT version FROM schema_version`.execute(first)).rows).toEqual(rows);
  });

  it('refuses a database written by a newer version of the app', async () => {
    const pg = await openPostgres();
    cleanups.push(() => pg.close());
    await sql`UPDATE schema_version SET version = ${postgresMigrations.length + 1}`.execute(pg.db);
    await expect(migratePostgres(pg.db)).rejects.toThrow(/newer than this app/);
  });
});

/** A table's shape in words both catalogs can produce. */
interface TableShape {
  columns: Record<string, { type: string; isNullable: boolean; default: string | null; isIdentity: boolean }>;
  primaryKey: string[];
  /** "unique (a, b DESC) where …", with a column's case-insensitive collation spelled "nocase". */
  indexes: string[];
  /** "column -> table.column on delete RULE" */
  foreignKeys: string[];
}

const SQLITE_TYPES: Record<string, string> = {
  TEXT: 'text',
  INTEGER: 'bigint',
  REAL: 'double precision',
  BLOB: 'bytea',
};

// A predicate as both print it, give or take parentheses, case and PostgreSQL's casts of literals.
const normalizePredicate = (where: string) =>
  where
    .replace(/::text/g, '')
    .replace(/[()]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
const indexShape = (isUnique: boolean, columns: string[], where: string | null) =>
  `${isUnique ? 'unique ' : ''}(${columns.join(', ')})${where ? ` where ${normalizePredicate(where)}` : ''}`;

function describeSqlite(db: BetterSqlite3.Database): Record<string, TableShape> {
  const tables = db
    .prepare(
      // images_search (FTS5) and its shadow tables are SQLite's search index; PostgreSQL's is a GIN
      // index. The two are compared by what they find (test/timeline.test.ts), not by shape.
      "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'images_search%' ORDER BY name",
    )
    .all() as { name: string; sql: string }[];
  const shapes: Record<string, TableShape> = {};
  const expressionOf = (indexName: string) => {
    const indexSql = db
      .prepare('SELECT sql FROM sqlite_master WHERE name = ?')
      .pluck()
      .get(indexName) as string;
    return /\bON\s+\S+\s*\((.*)\)\s*$/is.exec(indexSql)?.[1]?.trim() ?? 'expression';
  };
  for (const table of tables) {
    // table_xinfo, not table_info: it lists generated columns (images.taken_sort) too.
    const info = db.pragma(`table_xinfo(${table.name})`) as {
      name: string;
      type: string;
      notnull: number;
      dflt_value: string | null;
      pk: number;
    }[];
    const isAutoincrement = /AUTOINCREMENT/i.test(table.sql);
    const columns: TableShape['columns'] = {};
    for (const c of info) {
      columns[c.name] = {
        type: SQLITE_TYPES[c.type] ?? c.type,
        // SQLite lets a non-INTEGER primary key hold NULL (a documented legacy quirk); the app never
        // stores one, and PostgreSQL refuses it, so a key column counts as NOT NULL.
        isNullable: c.notnull === 0 && c.pk === 0,
        default: c.dflt_value,
        isIdentity: isAutoincrement && c.pk === 1,
      };
    }
    const primaryKey = info
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    const indexes = (
      db.pragma(`index_list(${table.name})`) as {
        name: string;
        unique: number;
        origin: string;
        partial: number;
      }[]
    )
      .filter((index) => index.origin !== 'pk')
      .map((index) => {
        const keyColumns = (
          db.pragma(`index_xinfo(${index.name})`) as {
            name: string;
            desc: number;
            coll: string;
            key: number;
          }[]
        )
          .filter((c) => c.key === 1)
          // An expression's column has no name: it is read from the index's SQL. Collations are left
          // out: users.email keeps SQLite's NOCASE from migration 1, while both dialects hold
          // case-insensitive uniqueness through users_email_lower (tested on its own above).
          .map((c) => `${c.name ?? expressionOf(index.name)}${c.desc ? ' DESC' : ''}`);
        const indexSql = index.partial
          ? (db.prepare('SELECT sql FROM sqlite_master WHERE name = ?').pluck().get(index.name) as string)
          : '';
        const where = /\bWHERE\b(.*)$/is.exec(indexSql)?.[1] ?? null;
        return indexShape(index.unique === 1, keyColumns, where);
      })
      .sort();
    const foreignKeys = (
      db.pragma(`foreign_key_list(${table.name})`) as {
        from: string;
        table: string;
        to: string;
        on_delete: string;
      }[]
    )
      .map((fk) => `${fk.from} -> ${fk.table}.${fk.to} on delete ${fk.on_delete}`)
      .sort();
    shapes[table.name] = { columns, primaryKey, indexes, foreignKeys };
  }
  return shapes;
}

async function describePostgres(db: Kysely<Database>): Promise<Record<string, TableShape>> {
  // images.search_words (migration 22) and its GIN index images_search are PostgreSQL's search
  // index, as images_search (FTS5) is SQLite's: left out here, compared by what they find.
  const columnRows = (
    await sql<{
      table_name: string;
      column_name: string;
      data_type: string;
      is_nullable: string;
      column_default: string | null;
      is_identity: string;
      collation_name: string | null;
    }>`SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity, collation_name
       FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name <> 'schema_version'
         AND NOT (table_name = 'images' AND column_name = 'search_words')
       ORDER BY table_name, ordinal_position`.execute(db)
  ).rows;
  const keyRows = (
    await sql<{ table_name: string; column_name: string; constraint_type: string; position: number }>`
      SELECT tc.table_name, k.column_name, tc.constraint_type, k.ordinal_position AS position
      FROM information_schema.table_constraints tc
      JOIN information_schema.key_column_usage k
        ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
      WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY'
      ORDER BY tc.table_name, k.ordinal_position`.execute(db)
  ).rows;
  const foreignKeyRows = (
    await sql<{ table_name: string; definition: string; referenced: string; column_name: string }>`
      SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name,
             c.confrelid::regclass::text AS referenced, pg_get_constraintdef(c.oid) AS definition
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
      WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace`.execute(db)
  ).rows;
  const indexRows = (
    await sql<{ tablename: string; indexname: string; indexdef: string }>`
      SELECT tablename, indexname, indexdef FROM pg_indexes
      WHERE schemaname = 'public' AND indexname <> 'images_search' AND indexname NOT IN (
        SELECT conname FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace)`.execute(
      db,
    )
  ).rows;

  const shapes: Record<string, TableShape> = {};
  const shape = (table: string) => {
    shapes[table] ??= { columns: {}, primaryKey: [], indexes: [], foreignKeys: [] };
    return shapes[table];
  };
  for (const c of columnRows) {
    shape(c.table_name).columns[c.column_name] = {
      type: c.data_type,
      isNullable: c.is_nullable === 'YES',
      // A text literal's default prints with its cast ('ready'::text); SQLite's without.
      default: c.column_default?.replace(/::text$/, '') ?? null,
      isIdentity: c.is_identity === 'YES',
    };
  }
  for (const k of keyRows) shape(k.table_name).primaryKey.push(k.column_name);
  for (const fk of foreignKeyRows) {
    const to = /REFERENCES \S+\((\w+)\)/.exec(fk.definition)?.[1];
    const onDelete =
      /ON DELETE (CASCADE|SET NULL|RESTRICT|SET DEFAULT)/.exec(fk.definition)?.[1] ?? 'NO ACTION';
    shape(fk.table_name).foreignKeys.push(
      `${fk.column_name} -> ${fk.referenced}.${to} on delete ${onDelete}`,
    );
  }
  for (const index of indexRows) {
    const parsed = /^CREATE (UNIQUE )?INDEX \S+ ON \S+ USING btree \((.*?)\)(?: WHERE (.*))?$/.exec(
      index.indexdef,
    );
    if (!parsed) throw new Error(`unexpected index ${index.indexdef}`);
    const columns = (parsed[2] ?? '').split(', ');
    shape(index.tablename).indexes.push(indexShape(Boolean(parsed[1]), columns, parsed[3] ?? null));
  }
  for (const table of Object.values(shapes)) {
    table.indexes.sort();
    table.foreignKeys.sort();
  }
  return Object.fromEntries(Object.entries(shapes).sort(([a], [b]) => a.localeCompare(b)));
}
