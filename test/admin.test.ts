import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, PASSWORD, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { all, attr, attrs, count, texts } from './support/html.js';
import { makeJpeg, makePng } from './support/images.js';
import { type Policy, postToBucket, upload, uploadWithJs } from './support/uploads.js';

describe('admin console', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let aliceId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    aliceId = (await t.user('alice@example.com')).id;
    await upload(alice, await makePng(), 'one.png');
  });
  afterAll(() => t.close());

  it('lists users with role, state, image count, storage and last login, for admins only', async () => {
    const res = await admin.get('/admin');
    expect(res.status).toBe(200);
    const html = await res.text();
    const row = all(html, 'tr').find((tr) => tr.querySelector('td')?.text === 'alice@example.com');
    if (!row) throw new Error('no row for alice@example.com');
    const cells = texts(row, 'td');
    expect(count(row, 'td:nth-child(2) .role-member')).toBe(1);
    expect(cells.slice(2, 5)).toEqual(['active', '1', expect.stringMatching(/^[\d.]+ KiB$/)]);
    expect(cells[5]).toContain('UTC');
    expect(attrs(html, 'a', 'href')).toContain('/admin/invites');
    expect((await alice.get('/admin')).status).toBe(403);
    expect((await t.client().get('/admin')).status).toBe(303);
  });

  it('changes a role, and never demotes, disables or deletes the last admin', async () => {
    const adminId = (await t.user('admin@example.com')).id;
    const demote = await admin.post(`/admin/users/${adminId}/role`, { role: 'member' });
    expect(demote.status).toBe(409);
    expect(await demote.text()).toContain('last active admin');
    expect((await admin.post(`/admin/users/${adminId}/disable`)).status).toBe(409);
    expect((await t.user('admin@example.com')).role).toBe('admin');

    expect((await admin.post(`/admin/users/${aliceId}/role`, { role: 'viewer' })).status).toBe(303);
    expect((await t.user('alice@example.com')).role).toBe('viewer');
    expect((await admin.post(`/admin/users/${aliceId}/role`, { role: 'root' })).status).toBe(400);
    expect((await admin.post(`/admin/users/${aliceId}/role`, { role: 'member' })).status).toBe(303);
    expect((await alice.post(`/admin/users/${aliceId}/role`, { role: 'admin' })).status).toBe(403);
    expect((await t.user('alice@example.com')).role).toBe('member');
  });

  it('disables an account, which signs it out at once, and enables it again', async () => {
    expect((await alice.get('/')).status).toBe(200);
    expect((await admin.post(`/admin/users/${aliceId}/disable`)).status).toBe(303);
    expect((await alice.get('/')).status).toBe(303);
    // Her right password gets the answer any wrong one gets: nothing tells a guesser it was right.
    const login = await t.client().post('/login', { email: 'alice@example.com', password: PASSWORD });
    expect(login.status).toBe(401);
    expect(await login.text()).toContain('Incorrect email or password');
    expect((await admin.post(`/admin/users/${aliceId}/enable`)).status).toBe(303);
    const again = t.client();
    expect((await again.post('/login', { email: 'alice@example.com', password: PASSWORD })).status).toBe(303);
    alice = again;
  });

  it('enforces an image quota before presigning, and a byte quota in the policy itself', async () => {
    expect((await admin.post(`/admin/users/${aliceId}/quota`, { mib: 'lots', images: '' })).status).toBe(400);
    expect((await admin.post(`/admin/users/${aliceId}/quota`, { mib: '', images: '1' })).status).toBe(303);
    const refused = await alice.postJson('/uploads/presign', { name: 'two.png' });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: string }).error).toContain('limit of 1 images');
    // The admin sees what alice uses against it, in words and as a bar.
    const person = await (await admin.get(`/admin/users/${aliceId}`)).text();
    expect(person).toContain('Uses:</strong>');
    expect(person).toContain('1 of 1 image');
    expect(person).toContain('aria-label="Images used"');

    // 0.01 MiB = 10,486 bytes, minus what one.png already uses, minus what unfinished uploads could
    // still write (none: the one that uploaded it is finished).
    await admin.post(`/admin/users/${aliceId}/quota`, { mib: '0.01', images: '' });
    const used = (await t.services.images.usage(aliceId)).bytes;
    const open = await t.services.database.q
      .selectFrom('pending_uploads')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('max_bytes'), eb.lit(0)).as('held'))
      .where('owner_id', '=', aliceId)
      .where('closed_at', 'is', null)
      .executeTakeFirstOrThrow();
    const held = Number(open.held);
    expect(held).toBe(0);
    const presign = await alice.postJson('/uploads/presign', { name: 'big.png' });
    expect(presign.status).toBe(200);
    const policy = (await presign.json()) as Policy;
    const conditions = JSON.parse(Buffer.from(policy.fields.Policy ?? '', 'base64').toString()).conditions;
    expect(conditions).toContainEqual(['content-length-range', 1, Math.round(0.01 * 2 ** 20) - used - held]);
    const tooBig = await postToBucket(policy, Buffer.alloc(20_000, 1), 'image/png', 'big.png');
    expect(tooBig.status).toBe(400);
    expect(await tooBig.text()).toContain('EntityTooLarge');

    await admin.post(`/admin/users/${aliceId}/quota`, { mib: '', images: '' });
    expect((await t.user('alice@example.com')).quotaBytes).toBeNull();
  });

  it('replaces a member’s image into the member’s prefix and quota, so deleting the admin keeps it', async () => {
    const dave = await signUpWithRole(t, admin, 'dave@example.com', 'member');
    const daveId = (await t.user('dave@example.com')).id;
    const imageId = await upload(dave, await makePng(100, 100), 'dave.png');
    const helper = await signUpWithRole(t, admin, 'helper@example.com', 'admin');
    const helperId = (await t.user('helper@example.com')).id;
    // Dave's quota, not the helper's, decides: a file that would take dave past it is refused.
    const small = await makePng(120, 90);
    await admin.post(`/admin/users/${daveId}/quota`, {
      mib: ((((await t.services.images.usage(daveId)).bytes + 10) / 2 ** 20) * 1.000001).toFixed(6),
      images: '',
    });
    const big = await makeJpeg(600, 400);
    const refused = await helper.postJson('/uploads/presign', {
      name: 'big.jpg',
      size: big.length,
      replaces: imageId,
    });
    expect(refused.status).toBe(413);
    expect(((await refused.json()) as { error: string }).error).toContain('storage quota');
    await admin.post(`/admin/users/${daveId}/quota`, { mib: '', images: '' });
    const { done } = await uploadWithJs(helper, small, 'new.png', 'image/png', imageId);
    expect(done.status, await done.clone().text()).toBe(200);
    const image = await t.services.images.getForUser(await t.user('dave@example.com'), imageId);
    expect(image.originalKey.startsWith(`users/${daveId}/originals/`)).toBe(true);
    expect(image.displayKey.startsWith(`users/${daveId}/display/`)).toBe(true);
    expect(image.thumbKey.startsWith(`users/${daveId}/thumbs/`)).toBe(true);
    // The helper leaves; dave's image and its files stay.
    expect(
      (await admin.post(`/admin/users/${helperId}/delete`, { confirm: 'helper@example.com' })).status,
    ).toBe(303);
    const download = await dave.get(`/images/${imageId}/download`);
    expect(download.status).toBe(303);
    const original = await fetch(download.headers.get('location') as string);
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(small)).toBe(true);
  });

  it('deletes a user and every object of theirs only after the email is typed', async () => {
    const carol = await signUpWithRole(t, admin, 'carol@example.com', 'member');
    const carolId = (await t.user('carol@example.com')).id;
    await upload(carol, await makePng(), 'c.png');
    await t.settle();
    // An upload that was never completed leaves an object under the prefix too.
    const pending = (await (await carol.postJson('/uploads/presign', { name: 'x.png' })).json()) as Policy;
    expect((await postToBucket(pending, await makePng(), 'image/png', 'x.png')).status).toBe(201);
    const before = await t.services.storage.list(`users/${carolId}/`);
    expect(before.keys.length).toBe(4);

    const wrong = await admin.post(`/admin/users/${carolId}/delete`, { confirm: 'carol' });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('Type the email address carol@example.com');
    expect(await t.count('users', `id = '${carolId}'`)).toBe(1);

    const res = await admin.post(`/admin/users/${carolId}/delete`, { confirm: 'CAROL@example.com ' });
    expect(res.status).toBe(303);
    expect(await t.count('users', `id = '${carolId}'`)).toBe(0);
    expect(await t.count('images', `owner_id = '${carolId}'`)).toBe(0);
    expect((await t.services.storage.list(`users/${carolId}/`)).keys).toEqual([]);
    expect(await t.count('storage_deletions')).toBe(0);
    expect((await carol.get('/')).status).toBe(303);
    const adminId = (await t.user('admin@example.com')).id;
    expect(
      (await admin.post(`/admin/users/${adminId}/delete`, { confirm: 'admin@example.com' })).status,
    ).toBe(409);
  });

  describe('audit log', () => {
    it('records who did what, filters by user, action and date, and pages newest first', async () => {
      const html = await (await admin.get('/admin/audit?action=role_change')).text();
      expect(html).toContain('member → viewer');
      expect(texts(html, 'td')).not.toContain('logged in');
      // Actions read as words; the filter keeps the codes as its values.
      expect(texts(html, 'td')).toContain('changed role');
      expect(html).toContain('<option value="quota_change">changed quota</option>');
      const byAlice = await (await admin.get('/admin/audit?email=ALICE@example.com')).text();
      expect(texts(byAlice, 'td')).toContain('uploaded');
      expect(texts(byAlice, 'td')).not.toContain('changed role');
      // An address breaks before its @ and after its dots, not mid-word.
      expect(byAlice).toContain('alice<wbr/>@example.<wbr/>com');
      const failed = await t
        .client()
        .post('/login', { email: 'nobody@example.com', password: 'wrong password' });
      expect(failed.status).toBe(401);
      const failures = await (await admin.get('/admin/audit?action=login_failed')).text();
      expect(failures).toContain('nobody@example.com');

      const today = new Date(t.now()).toISOString().slice(0, 10);
      expect(await (await admin.get(`/admin/audit?from=${today}&to=${today}`)).text()).toContain(
        '<td>signed up</td>',
      );
      expect(await (await admin.get('/admin/audit?to=2000-01-01')).text()).toContain('No entries match');
      expect((await admin.get('/admin/audit?from=yesterday')).status).toBe(400);
      expect((await admin.get('/admin/audit?action=drop_table')).status).toBe(400);
      expect((await alice.get('/admin/audit')).status).toBe(403);

      for (let i = 0; i < 120; i++)
        await t.services.audit.record({ action: 'login', actor: null, target: `bulk ${i}` });
      const first = await (await admin.get('/admin/audit')).text();
      expect(first).toContain('bulk 119');
      const next = attr(first, 'a[href^="/admin/audit?cursor="]', 'href');
      const second = await (await admin.get(next as string)).text();
      expect(second).toContain('bulk 19');
      expect(second).not.toContain('bulk 20<');
    });

    it('exports the filtered log as CSV with formula cells neutralised', async () => {
      await t.services.audit.record({
        action: 'rename',
        actor: null,
        target: 'x',
        detail: '=HYPERLINK("http://evil")',
      });
      const res = await admin.get('/admin/audit.csv?action=rename');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/csv');
      const lines = (await res.text()).trim().split('\r\n');
      expect(lines[0]).toBe('id,time_utc,actor_id,actor_email,action,target,detail,ip');
      expect(lines).toHaveLength(2);
      expect(lines[1]).toContain(`"'=HYPERLINK(""http://evil"")"`);
    });

    it('cannot be changed or deleted, even with SQL', async () => {
      const db = t.services.database.q;
      await expect(db.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only/);
      await expect(db.updateTable('audit_log').set({ action: 'login' }).execute()).rejects.toThrow(
        /append-only/,
      );
    });
  });
});

describe('the last admin, when two admins act at once', () => {
  let t: TestApp;
  afterAll(() => t.close());

  it('lets only one of two admins demoting or disabling each other at once succeed', async () => {
    t = await makeTestApp();
    const first = t.client();
    await signUp(first, 'admin@example.com');
    await signUpWithRole(t, first, 'second@example.com', 'admin');
    const admins = async () =>
      (await t.services.people.list()).filter((p) => p.role === 'admin' && !p.isDisabled).map((p) => p.email);
    for (const act of ['demote', 'disable'] as const) {
      const [a, b] = [await t.user('admin@example.com'), await t.user('second@example.com')];
      const change = (actor: typeof a, target: typeof a) =>
        act === 'demote'
          ? t.services.people.changeRole({ user: actor, ip: 'test' }, target.id, 'member')
          : t.services.people.setDisabled({ user: actor, ip: 'test' }, target.id, true);
      const outcomes = await Promise.allSettled([change(a, b), change(b, a)]);
      expect(outcomes.map((o) => o.status).sort(), act).toEqual(['fulfilled', 'rejected']);
      const refusal = outcomes.find((o) => o.status === 'rejected');
      expect(String(refusal?.reason), act).toContain('last active admin');
      const left = await admins();
      expect(left, act).toHaveLength(1);
      // Back to two admins for the next round.
      const keeper = await t.user(left[0] as string);
      const other = keeper.email === a.email ? b : a;
      if (act === 'demote')
        await t.services.people.changeRole({ user: keeper, ip: 'test' }, other.id, 'admin');
      else await t.services.people.setDisabled({ user: keeper, ip: 'test' }, other.id, false);
      expect(await admins(), act).toHaveLength(2);
    }
  });
});
