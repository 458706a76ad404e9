import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { startServer } from '../src/server.js';
import { AUDIT_PURGE_JOB } from '../src/services/audit.js';
import { createServices } from '../src/services/index.js';
import { JOB_LEASE_MS } from '../src/services/job-lease.js';
import {
  type Client,
  makeTestApp,
  PASSWORD,
  signUp,
  signUpWithRole,
  type TestApp,
  testDialect,
} from './support/app.js';
import { makePng } from './support/images.js';
import { upload, uploadWithJs } from './support/uploads.js';

const DAY = 24 * 60 * 60 * 1000;
const MINUTE = 60 * 1000;
const from = (ip: string) => ({ 'X-Forwarded-For': ip });
const silent = pino({ level: 'silent' });

/** Rows and the characters they hold, the part of the table a visitor can make grow. */
async function auditSize(t: TestApp): Promise<{ rows: number; chars: number }> {
  const { rows } = await sql<{ rows: number | string; chars: number | string }>`
    SELECT count(*) AS rows, coalesce(sum(length(coalesce(actor_email, '')) + length(coalesce(target, ''))
      + length(coalesce(detail, '')) + length(coalesce(ip, ''))), 0) AS chars FROM audit_log`.execute(
    t.services.database.q,
  );
  return { rows: Number(rows[0]?.rows), chars: Number(rows[0]?.chars) };
}

/** The newest audit entry of this action, as stored. */
const lastOf = (t: TestApp, action: string) =>
  t.services.database.q
    .selectFrom('audit_log')
    .selectAll()
    .where('action', '=', action)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirstOrThrow();

/** Faults the tests inject with a trigger, written for the dialect the suite runs on. */
async function addTrigger(t: TestApp, trigger: { sqlite: string; postgres: string }): Promise<void> {
  await sql
    .raw(testDialect === 'postgres' ? trigger.postgres : trigger.sqlite)
    .execute(t.services.database.q);
}

describe('audit log cost', () => {
  let t: TestApp;
  beforeEach(async () => {
    // A low per-address limit reaches the throttle after a few argon2 checks instead of 100.
    t = await makeTestApp({
      env: { TRUST_PROXY: 'true' },
      loginLimits: { perIp: { limit: 5, windowMs: 15 * MINUTE } },
    });
    await signUp(t.client(), 'admin@example.com');
  });
  afterEach(() => t.close());

  it('writes one row for 2,000 throttled logins with 254-character emails, with their count, when the window closes', async () => {
    const email = (i: number) => `${String(i).padStart(242, 'x')}@example.com`;
    expect(email(1)).toHaveLength(254);
    // Use up the address's budget, each failure a row of its own.
    for (let i = 0; i < 5; i++)
      await t.client().post('/login', { email: email(i), password: 'wrong password!' }, from('192.0.2.1'));
    const before = await auditSize(t);

    const statuses: number[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          t
            .client()
            .post('/login', { email: email(1000 + batch * 100 + i), password: 'guess' }, from('192.0.2.1')),
        ),
      );
      statuses.push(...answers.map((r) => r.status));
    }
    expect(statuses.filter((s) => s === 429)).toHaveLength(2000);
    expect((await auditSize(t)).rows - before.rows).toBeLessThanOrEqual(1);

    t.advance(15 * MINUTE);
    await t.services.audit.flushCounts();
    const after = await auditSize(t);
    expect(after.rows - before.rows).toBe(1);
    expect(after.chars - before.chars).toBeLessThan(800);
    const row = await lastOf(t, 'throttled');
    expect(row).toMatchObject({ actor_id: null, target: 'login', ip: '192.0.2.1' });
    // Three of the first batch's targets (a hundred arrive at once, in any order), each shortened.
    expect(row.detail).toMatch(
      /^2000 attempt\(s\) refused between \S+ and \S+; for (x+…x+10\d\d@example\.com, ){2}x+…x+10\d\d@example\.com and others$/,
    );
    expect(row.detail).toContain('and others');
  });

  it('keeps separate counts per address and kind, and shows them in the log', async () => {
    for (let i = 0; i < 5; i++)
      await t
        .client()
        .post('/login', { email: 'a@example.com', password: 'wrong password!' }, from('192.0.2.1'));
    for (let i = 0; i < 3; i++)
      await t.client().post('/login', { email: 'a@example.com', password: PASSWORD }, from('192.0.2.1'));
    await t.services.audit.recordThrottled({ kind: 'share link', ip: '192.0.2.1' });
    await t.services.audit.recordThrottled({ kind: 'login', ip: '203.0.113.1', target: 'b@example.com' });
    expect(await t.services.audit.flushCounts(true)).toBe(3);
    const rows = await t.services.database.q
      .selectFrom('audit_log')
      .select(['target', 'ip', 'detail'])
      .where('action', '=', 'throttled')
      .orderBy('id')
      .execute();
    expect(rows.map((r) => [r.target, r.ip, r.detail?.split(' ')[0]])).toEqual([
      ['login', '192.0.2.1', '3'],
      ['share link', '192.0.2.1', '1'],
      ['login', '203.0.113.1', '1'],
    ]);
  });

  it('counts refusals of an IPv6 client as the throttle does, by its /64: one row, not one per address', async () => {
    const inMy64 = (i: number) => `2001:db8:7:1:${(i + 1).toString(16)}::${(i * 7).toString(16)}`;
    for (let i = 0; i < 5; i++)
      await t
        .client()
        .post('/login', { email: 'a@example.com', password: 'wrong password!' }, from(inMy64(i)));
    // A new address of the /64 for every attempt: the throttle sees one client...
    const statuses: number[] = [];
    for (let batch = 0; batch < 12; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          t
            .client()
            .post('/login', { email: 'a@example.com', password: 'guess' }, from(inMy64(batch * 100 + i))),
        ),
      );
      statuses.push(...answers.map((r) => r.status));
    }
    expect(statuses.filter((s) => s === 429)).toHaveLength(1200);
    // ...and so does the log, which leaves room apart for everyone else.
    await t.services.audit.recordThrottled({
      kind: 'login',
      ip: '::ffff:192.0.2.9',
      target: 'b@example.com',
    });
    await t.services.audit.flushCounts(true);
    const rows = await t.services.database.q
      .selectFrom('audit_log')
      .select(['ip', 'detail'])
      .where('action', '=', 'throttled')
      .orderBy('id')
      .execute();
    expect(rows.map((r) => [r.ip, r.detail?.split(' ')[0]])).toEqual([
      ['2001:db8:7:1::/64', '1200'],
      ['192.0.2.9', '1'],
    ]);
  });

  it('caps every text it stores', async () => {
    const huge = 'z'.repeat(10_000);
    await t.services.audit.record({
      action: 'login_failed',
      actor: { id: huge, email: huge },
      target: huge,
      detail: huge,
      ip: huge,
    });
    const row = await lastOf(t, 'login_failed');
    expect({
      id: row.actor_id?.length,
      email: row.actor_email?.length,
      target: row.target?.length,
      detail: row.detail?.length,
      ip: row.ip?.length,
    }).toEqual({ id: 254, email: 254, target: 254, detail: 500, ip: 64 });
  });

  it('keeps a forwarded address of any length to 64 characters', async () => {
    await t.client().post('/login', { email: 'a@example.com', password: 'x' }, from('1'.repeat(5000)));
    const { ip } = await t.services.database.q
      .selectFrom('audit_log')
      .select('ip')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow();
    expect(ip).toBe('1'.repeat(64));
  });
});

describe('audit rows of changes', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeTestApp({ env: { TRUST_PROXY: 'true' } });
  });
  afterEach(() => t.close());

  type Row = {
    action: string;
    actor_email: string | null;
    target: string | null;
    detail: string | null;
    ip: string | null;
  };
  /** The rows written since `after` (an id), oldest first. */
  const rowsAfter = (after: number): Promise<Row[]> =>
    t.services.database.q
      .selectFrom('audit_log')
      .select(['action', 'actor_email', 'target', 'detail', 'ip'])
      .where('id', '>', after)
      .orderBy('id')
      .execute();
  const lastId = async () => {
    const last = await t.services.database.q
      .selectFrom('audit_log')
      .select('id')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return last?.id ?? 0;
  };
  const row = (
    action: string,
    actor: string | null,
    target: string | null,
    detail: string | null,
    ip: string | null,
  ) => ({
    action,
    actor_email: actor,
    target,
    detail,
    ip,
  });

  it('records each change once, with who made it, from where, on what', async () => {
    const admin = t.client();
    await admin.post('/signup', { email: 'admin@example.com', password: PASSWORD }, from('192.0.2.1'));
    const adminId = (await t.user('admin@example.com')).id;
    const invite = await admin.post('/admin/invites', { role: 'member' }, from('192.0.2.1'));
    const token = (await invite.text()).match(/\/signup\?invite=([a-z0-9]+)/)?.[1] as string;
    const alice = t.client();
    await alice.post(
      '/signup',
      { email: 'alice@example.com', password: PASSWORD, invite: token },
      from('192.0.2.2'),
    );
    const aliceId = (await t.user('alice@example.com')).id;
    const spare = await admin.post('/admin/invites', { role: 'viewer' }, from('192.0.2.1'));
    expect(spare.status).toBe(201);
    const { id: spareId } = await t.services.database.q
      .selectFrom('invites')
      .select('id')
      .where('role', '=', 'viewer')
      .executeTakeFirstOrThrow();
    await admin.post(`/admin/invites/${spareId}/revoke`, {}, from('192.0.2.1'));
    expect(await rowsAfter(0)).toEqual([
      row('signup', 'admin@example.com', adminId, 'role admin', '192.0.2.1'),
      row('invite_create', 'admin@example.com', null, 'role member', '192.0.2.1'),
      row('signup', 'alice@example.com', aliceId, 'role member, by invite', '192.0.2.2'),
      row('invite_create', 'admin@example.com', null, 'role viewer', '192.0.2.1'),
      row('invite_revoke', 'admin@example.com', spareId, null, '192.0.2.1'),
    ]);

    let mark = await lastId();
    const bob = t.client();
    expect(
      (
        await bob.post(
          '/login',
          { email: 'alice@example.com', password: 'wrong password!' },
          from('192.0.2.3'),
        )
      ).status,
    ).toBe(401);
    expect(
      (await bob.post('/login', { email: ' Nobody@example.com ', password: PASSWORD }, from('192.0.2.3')))
        .status,
    ).toBe(401);
    expect(
      (await bob.post('/login', { email: 'alice@example.com', password: PASSWORD }, from('192.0.2.3')))
        .status,
    ).toBe(303);
    await bob.post('/logout', {}, from('192.0.2.3'));
    const changed = await alice.post(
      '/account/password',
      { current: PASSWORD, password: 'another horse battery' },
      from('192.0.2.2'),
    );
    expect(changed.status).toBe(200);
    expect(await rowsAfter(mark)).toEqual([
      row('login_failed', null, 'alice@example.com', 'Incorrect email or password', '192.0.2.3'),
      row('login_failed', null, 'Nobody@example.com', 'Incorrect email or password', '192.0.2.3'),
      row('login', 'alice@example.com', null, null, '192.0.2.3'),
      row('logout', 'alice@example.com', null, null, '192.0.2.3'),
      row('password_change', 'alice@example.com', null, null, '192.0.2.2'),
    ]);

    mark = await lastId();
    const [one, two, three] = [
      await upload(alice, await makePng(), 'one.png'),
      await upload(alice, await makePng(), 'two.png'),
      await upload(alice, await makePng(), 'three.png'),
    ];
    const { done } = await uploadWithJs(alice, await makePng(40, 30), 'new.png', 'image/png', one);
    expect(done.status).toBe(200);
    await alice.post(`/images/${one}/rename`, { title: '  Sunset\u202e ' }, from('192.0.2.2'));
    await alice.post(`/images/${one}/visibility`, { shared: '1' }, from('192.0.2.2'));
    await alice.post(`/images/${one}/visibility`, { shared: '0' }, from('192.0.2.2'));
    expect(await rowsAfter(mark)).toEqual([
      row('upload', 'alice@example.com', one, null, 'unknown'),
      row('upload', 'alice@example.com', two, null, 'unknown'),
      row('upload', 'alice@example.com', three, null, 'unknown'),
      row('replace', 'alice@example.com', one, null, 'unknown'),
      row('rename', 'alice@example.com', one, 'Sunset', '192.0.2.2'),
      row('visibility', 'alice@example.com', one, 'shown to all', '192.0.2.2'),
      row('visibility', 'alice@example.com', one, 'private', '192.0.2.2'),
    ]);

    mark = await lastId();
    await alice.post(
      `/images/${one}/shares`,
      { expiry: 'never', password: 'open sesame', allow_download: '1' },
      from('192.0.2.2'),
    );
    const selection: [string, string][] = [
      ['ids', two as string],
      ['ids', three as string],
      ['expiry', '1d'],
    ];
    expect((await alice.postForm('/shares', selection, from('192.0.2.2'))).status).toBe(303);
    // Both links were made at the same moment: each is told apart by the images it shares.
    const linkOf = async (imageId: string) =>
      (
        await t.services.database.q
          .selectFrom('share_link_images')
          .select('link_id')
          .where('image_id', '=', imageId)
          .executeTakeFirstOrThrow()
      ).link_id;
    const links = [await linkOf(one as string), await linkOf(two as string)];
    await alice.post(`/shares/${links[0]}/revoke`, {}, from('192.0.2.2'));
    const expires = new Date(t.now() + DAY).toISOString();
    expect(await rowsAfter(mark)).toEqual([
      row(
        'share_create',
        'alice@example.com',
        links[0] as string,
        `1 image(s): ${one}; expires never; password; download`,
        '192.0.2.2',
      ),
      row(
        'share_create',
        'alice@example.com',
        links[1] as string,
        `2 image(s): ${two} ${three}; expires ${expires}`,
        '192.0.2.2',
      ),
      row('share_revoke', 'alice@example.com', links[0] as string, null, '192.0.2.2'),
    ]);

    mark = await lastId();
    await alice.post(`/images/${one}/delete`, {}, from('192.0.2.2'));
    const bulk: [string, string][] = [
      ['ids', two as string],
      ['ids', three as string],
      ['confirm', 'yes'],
    ];
    expect((await alice.postForm('/images/delete', bulk, from('192.0.2.2'))).status).toBe(303);
    expect(await rowsAfter(mark)).toEqual([
      row('trash', 'alice@example.com', one, null, '192.0.2.2'),
      row('trash', 'alice@example.com', two, null, '192.0.2.2'),
      row('trash', 'alice@example.com', three, null, '192.0.2.2'),
    ]);
    mark = await lastId();
    await alice.post('/trash/restore', { ids: one as string }, from('192.0.2.2'));
    await alice.post('/trash/delete', { ids: two as string, confirm: 'yes' }, from('192.0.2.2'));
    expect(await rowsAfter(mark)).toEqual([
      row('restore', 'alice@example.com', one, null, '192.0.2.2'),
      row('delete', 'alice@example.com', two, null, '192.0.2.2'),
    ]);

    mark = await lastId();
    const as = (c: Client, path: string, fields: Record<string, string> = {}) =>
      c.post(path, fields, from('192.0.2.1'));
    await as(admin, `/admin/users/${aliceId}/role`, { role: 'viewer' });
    await as(admin, `/admin/users/${aliceId}/disable`);
    await as(admin, `/admin/users/${aliceId}/enable`);
    await as(admin, `/admin/users/${aliceId}/quota`, { mib: '1', images: '10' });
    await as(admin, `/admin/users/${aliceId}/delete`, { confirm: 'alice@example.com' });
    expect(await rowsAfter(mark)).toEqual([
      row('role_change', 'admin@example.com', 'alice@example.com', 'member → viewer', '192.0.2.1'),
      row('disable', 'admin@example.com', 'alice@example.com', null, '192.0.2.1'),
      row('enable', 'admin@example.com', 'alice@example.com', null, '192.0.2.1'),
      row(
        'quota_change',
        'admin@example.com',
        'alice@example.com',
        '1048576 byte limit, 10 image limit',
        '192.0.2.1',
      ),
      row('user_delete', 'admin@example.com', 'alice@example.com', 'role viewer', '192.0.2.1'),
    ]);
  });

  /** An admin and a member with three images, and a second member with one. */
  async function galleryOfThree() {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    const bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    const png = await makePng();
    const mine = [
      await upload(alice, png, 'a.png'),
      await upload(alice, png, 'b.png'),
      await upload(alice, png, 'c.png'),
    ];
    return { admin, alice, mine: mine as [string, string, string], bobs: await upload(bob, png, 'bob.png') };
  }
  const deleteRows = async () =>
    (
      await t.services.database.q
        .selectFrom('audit_log')
        .select('target')
        .where('action', '=', 'delete')
        .orderBy('id')
        .execute()
    ).map((r) => r.target);
  const imagesLeft = (ids: string[]) => t.count('images', `id IN (${ids.map((id) => `'${id}'`).join(', ')})`);
  /** Delete, as the gallery's selection does it: to the trash, where "Delete forever" is the delete here. */
  async function toTrash(client: Client, ids: string[]) {
    const form: [string, string][] = [...ids.map((id): [string, string] => ['ids', id]), ['confirm', 'yes']];
    expect((await client.postForm('/images/delete', form)).status).toBe(303);
  }

  it('audits a bulk delete once per image deleted, however often the form listed it', async () => {
    const { alice, mine } = await galleryOfThree();
    const [a, b] = mine;
    await toTrash(alice, [a, b]);
    const form: [string, string][] = [
      ['ids', a],
      ['ids', a],
      ['ids', b],
      ['ids', a],
      ['confirm', 'yes'],
    ];
    const res = await alice.postForm('/trash/delete', form);
    expect(res.headers.get('location')).toBe('/trash?deleted=2');
    expect(await deleteRows()).toEqual([a, b]);
  });

  it('audits nothing when a bulk delete lists a foreign or missing image, as it deletes nothing', async () => {
    const { alice, mine, bobs } = await galleryOfThree();
    for (const other of [bobs, 'f'.repeat(32)]) {
      const form: [string, string][] = [
        ['ids', mine[0]],
        ['ids', other],
        ['ids', mine[1]],
        ['confirm', 'yes'],
      ];
      expect((await alice.postForm('/images/delete', form)).status).toBe(404);
    }
    expect(await imagesLeft(mine)).toBe(3);
    expect(await deleteRows()).toEqual([]);
  });

  it('audits only the images a bulk delete removed, not one that went meanwhile', async () => {
    const { alice, mine } = await galleryOfThree();
    const [a, b, c] = mine;
    // Another instance deletes b while this delete runs, after this one read the rows: it is no
    // longer this delete's to record. (The delete first closes a's replacement still uploading;
    // that update is the moment the trigger takes b away.)
    expect((await alice.postJson('/uploads/presign', { name: 'newer.png', replaces: a })).status).toBe(200);
    await toTrash(alice, mine);
    await addTrigger(t, {
      sqlite: `CREATE TRIGGER gone_meanwhile BEFORE UPDATE OF closed_at ON pending_uploads BEGIN DELETE FROM images WHERE id = '${b}'; END`,
      postgres: `CREATE FUNCTION gone_meanwhile() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN DELETE FROM images WHERE id = '${b}'; RETURN NEW; END $$;
        CREATE TRIGGER gone_meanwhile BEFORE UPDATE OF closed_at ON pending_uploads FOR EACH ROW EXECUTE FUNCTION gone_meanwhile();`,
    });
    const form: [string, string][] = [
      ['ids', a],
      ['ids', b],
      ['ids', c],
      ['confirm', 'yes'],
    ];
    expect((await alice.postForm('/trash/delete', form)).headers.get('location')).toBe('/trash?deleted=2');
    expect(await deleteRows()).toEqual([a, c]);
  });

  it('leaves no audit row when the change fails part-way, and nothing changed', async () => {
    const { alice, mine } = await galleryOfThree();
    const [a, b, c] = mine;
    await toTrash(alice, mine);
    // The database refuses the second image's delete, after the first one's row was written.
    await addTrigger(t, {
      sqlite: `CREATE TRIGGER refuse_delete BEFORE DELETE ON images WHEN OLD.id = '${b}' BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
      postgres: `CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF OLD.id = '${b}' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN OLD; END $$;
        CREATE TRIGGER refuse_delete BEFORE DELETE ON images FOR EACH ROW EXECUTE FUNCTION refuse_delete();`,
    });
    const form: [string, string][] = [
      ['ids', a],
      ['ids', b],
      ['ids', c],
      ['confirm', 'yes'],
    ];
    expect((await alice.postForm('/trash/delete', form)).status).toBe(500);
    expect(await imagesLeft(mine)).toBe(3);
    expect(await deleteRows()).toEqual([]);

    const admin = t.client();
    await admin.post('/login', { email: 'admin@example.com', password: PASSWORD });
    const adminId = (await t.user('admin@example.com')).id;
    expect((await admin.post(`/admin/users/${adminId}/role`, { role: 'member' })).status).toBe(409);
    expect(await t.count('audit_log', "action = 'role_change'")).toBe(0);
  });

  it('makes no change whose audit row cannot be written', async () => {
    const { alice, mine } = await galleryOfThree();
    await addTrigger(t, {
      sqlite: `CREATE TRIGGER audit_full BEFORE INSERT ON audit_log WHEN NEW.action = 'rename' BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
      postgres: `CREATE FUNCTION audit_full() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.action = 'rename' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER audit_full BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_full();`,
    });
    expect((await alice.post(`/images/${mine[0]}/rename`, { title: 'Unrecorded' })).status).toBe(500);
    const { title } = await t.services.database.q
      .selectFrom('images')
      .select('title')
      .where('id', '=', mine[0])
      .executeTakeFirstOrThrow();
    expect(title).toBe('a');
  });
});

/** `n` entries of a login, written straight into the log, the first at `at` and each 1 ms after. */
async function insertEntries(t: TestApp, n: number, at: number, target: string): Promise<void> {
  const rows = Array.from({ length: n }, (_, i) => ({ at: at + i, action: 'login', target }));
  await t.services.database.transaction(async () => {
    for (let i = 0; i < rows.length; i += 1000)
      await t.services.database.q
        .insertInto('audit_log')
        .values(rows.slice(i, i + 1000))
        .execute();
  });
}

/** How many entries each purge so far deleted, from its own audit row. */
async function purgeDetails(t: TestApp): Promise<number[]> {
  const rows = await t.services.database.q
    .selectFrom('audit_log')
    .select('detail')
    .where('action', '=', 'audit_purge')
    .orderBy('id')
    .execute();
  return rows.map((r) => Number(r.detail?.split(' ')[0]));
}

describe('audit log retention', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeTestApp();
  });
  afterEach(() => t.close());

  const ids = async () =>
    (await t.services.database.q.selectFrom('audit_log').select('id').orderBy('id').execute()).map(
      (r) => r.id,
    );

  /** Some entries now, then `days` later some more; returns the ids of the old ones. */
  async function entriesAcross(days: number): Promise<{ old: number[]; recent: number[] }> {
    for (let i = 0; i < 3; i++)
      await t.services.audit.record({ action: 'login', actor: null, target: `old ${i}` });
    const old = await ids();
    t.advance(days * DAY);
    for (let i = 0; i < 2; i++)
      await t.services.audit.record({ action: 'login', actor: null, target: `recent ${i}` });
    return { old, recent: (await ids()).filter((id) => !old.includes(id)) };
  }

  it('purges only entries older than the retention period, and records the purge', async () => {
    const { old, recent } = await entriesAcross(31);
    const cutoff = new Date(t.now() - 30 * DAY).toISOString();
    expect(await t.services.audit.purgeExpired(30)).toBe(old.length);
    const left = await ids();
    expect(left.slice(0, recent.length)).toEqual(recent);
    const purge = await t.services.database.q
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'audit_purge')
      .execute();
    expect(purge).toEqual([
      expect.objectContaining({
        actor_id: null,
        target: '30 day retention',
        detail: `${old.length} entries older than ${cutoff} deleted`,
      }),
    ]);
    expect(await t.services.audit.purgeExpired(30)).toBe(0);
    expect(await t.count('audit_log', "action = 'audit_purge'")).toBe(1);
  });

  it('purges a large backlog in batches of 10,000, each recorded', async () => {
    await insertEntries(t, 25_000, t.now() - 400 * DAY, 'bulk');
    expect(await t.services.audit.purgeExpired(365)).toBe(25_000);
    expect(await purgeDetails(t)).toEqual([10_000, 10_000, 5_000]);
    expect(await t.count('audit_log', "target = 'bulk'")).toBe(0);
  });

  it('still refuses a plain DELETE of recent and old entries alike, and any UPDATE', async () => {
    const { old, recent } = await entriesAcross(31);
    const db = t.services.database.q;
    for (const id of [old[0], recent[0]] as number[])
      await expect(db.deleteFrom('audit_log').where('id', '=', id).execute()).rejects.toThrow(/append-only/);
    await expect(db.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only/);
    await expect(db.updateTable('audit_log').set({ action: 'login' }).execute()).rejects.toThrow(
      /append-only/,
    );
    // Even inside a purge's guard, only rows older than its cut-off may go.
    await db
      .insertInto('audit_purge_guard')
      .values({ id: 1, cutoff: t.now() - DAY })
      .execute();
    try {
      await expect(
        db
          .deleteFrom('audit_log')
          .where('id', '=', recent[0] as number)
          .execute(),
      ).rejects.toThrow(/append-only/);
    } finally {
      await db.deleteFrom('audit_purge_guard').execute();
    }
    expect(await t.count('audit_log')).toBe(old.length + recent.length);
  });

  it('runs on a schedule, and stopping it writes the throttled counts still open', async () => {
    const { old } = await entriesAcross(3);
    await t.services.audit.recordThrottled({ kind: 'login', ip: '192.0.2.1', target: 'a@example.com' });
    const stop = t.services.audit.startSchedule(silent, { retentionDays: 2, intervalMs: 10 });
    await expect
      .poll(() => t.count('audit_log', "action = 'audit_purge'"), { timeout: 10_000, interval: 20 })
      .toBe(1);
    expect(await t.count('audit_log', `id <= ${old.at(-1)}`)).toBe(0);
    expect(await t.count('audit_log', "action = 'throttled'")).toBe(0);
    await stop();
    expect(await t.count('audit_log', "action = 'throttled'")).toBe(1);
  });

  it('says on the audit page how long entries are kept', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    expect(await (await admin.get('/admin/audit')).text()).toContain('Entries are kept for ever');
    await t.close();
    t = await makeTestApp({ env: { AUDIT_RETENTION_DAYS: '90' } });
    const again = t.client();
    await signUp(again, 'admin@example.com');
    expect(await (await again.get('/admin/audit')).text()).toContain(
      'Entries older than 90 days are deleted',
    );
  });

  it('takes AUDIT_RETENTION_DAYS as a whole number of days, at least 1', () => {
    expect(loadConfig({}).auditRetentionDays).toBeNull();
    expect(loadConfig({ AUDIT_RETENTION_DAYS: '365' }).auditRetentionDays).toBe(365);
    for (const bad of ['0', '-3', '1.5', 'forever'])
      expect(() => loadConfig({ AUDIT_RETENTION_DAYS: bad })).toThrow(/AUDIT_RETENTION_DAYS/);
  });
});

describe('audit log retention on two instances on one database', () => {
  let t: TestApp;
  const connections: AppDb[] = [];
  beforeEach(async () => {
    t = await makeTestApp();
  });
  afterEach(async () => {
    for (const database of connections.splice(0)) await database.close();
    await t.close();
  });

  /**
   * Another instance on the test app's database: its own services and instance id, as a second
   * process has, and on PostgreSQL its own pool. On SQLite it shares the app's connection: two
   * connections in one process deadlock when one waits for the write lock (busy_timeout,
   * synchronously) that the other holds across an await, which two processes do not. The lease is
   * a row either way, so sharing the connection tests it all the same.
   */
  async function anotherInstance() {
    let database = t.services.database;
    if (testDialect === 'postgres') {
      database = await connectDatabase(t.databaseTarget);
      connections.push(database);
    }
    return createServices({ database, storage: t.services.storage, clock: t.now, config: t.config });
  }

  /** `n` entries written `days` ago (the clock moves on by that much). */
  async function oldEntries(n: number, days: number): Promise<void> {
    await insertEntries(t, n, t.now(), 'old');
    t.advance(days * DAY);
  }

  it('purges on one instance when both purge at once, and again on the next round', async () => {
    const a = t.services.audit;
    const b = (await anotherInstance()).audit;
    // Two batches, with a pause between them: the other instance asks while the first purges.
    await oldEntries(15_000, 31);
    const first = await Promise.all([a.purgeScheduled(30, silent), b.purgeScheduled(30, silent)]);
    expect(first.filter((n) => n !== null)).toEqual([15_000]);
    expect(first.filter((n) => n === null)).toHaveLength(1);
    expect(await purgeDetails(t)).toEqual([10_000, 5_000]);
    expect(await t.count('audit_log', "target = 'old'")).toBe(0);

    await oldEntries(3, 31);
    const next = await Promise.all([b.purgeScheduled(30, silent), a.purgeScheduled(30, silent)]);
    // The three, and the first round's two purge rows, as old by now.
    expect(next.filter((n) => n !== null)).toEqual([3 + 2]);
    expect(await purgeDetails(t)).toEqual([5]);
  });

  it('waits out a crashed instance’s lease on the purge, then purges', async () => {
    await oldEntries(3, 31);
    // What a crash mid-purge leaves: the lease taken by an instance that never releases it.
    await t.services.database.q
      .insertInto('job_leases')
      .values({ name: AUDIT_PURGE_JOB, held_by: 'crashed-instance', held_until: t.now() + JOB_LEASE_MS })
      .execute();
    const survivor = (await anotherInstance()).audit;
    t.advance(JOB_LEASE_MS - 1);
    expect(await survivor.purgeScheduled(30, silent)).toBeNull();
    expect(await t.count('audit_log', "target = 'old'")).toBe(3);
    t.advance(1); // the lease has lapsed
    expect(await survivor.purgeScheduled(30, silent)).toBe(3);
    expect(await purgeDetails(t)).toEqual([3]);
  });
});

describe('the server', () => {
  it('purges the audit log at start-up when AUDIT_RETENTION_DAYS is set', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-retention-'));
    const file = path.join(dataDir, 'gallery.db');
    const seed = openDatabase(file);
    const insert = seed.prepare("INSERT INTO audit_log (at, action, target) VALUES (?, 'login', ?)");
    insert.run(Date.now() - 10 * DAY, 'ten days ago');
    insert.run(Date.now() - DAY / 2, 'this morning');
    seed.close();
    const running = await startServer(
      loadConfig({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', AUDIT_RETENTION_DAYS: '7' }),
    );
    const watch = openDatabase(file);
    try {
      const targets = () => watch.prepare('SELECT target FROM audit_log ORDER BY id').pluck().all();
      await expect
        .poll(targets, { timeout: 10_000, interval: 50 })
        .toEqual(['this morning', '7 day retention']);
    } finally {
      watch.close();
      await running.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
