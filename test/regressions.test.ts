import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { makePng } from './support/images.js';
import { shownLink } from './support/share-links.js';
import { upload } from './support/uploads.js';

const XSS = `<img src=x onerror=alert(1)>"'&`;
const ESCAPED = '&lt;img src=x onerror=alert(1)&gt;';
/** Never shown anywhere, so it must never appear anywhere, escaped or not. */
const LINK_PASSWORD = 'pw<script>alert(2)</script>';

describe('security regressions', () => {
  let t: TestApp;
  let admin: Client;
  let member: Client;
  let imageId: string;
  let linkPath: string;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    member = await signUpWithRole(t, admin, 'member@example.com', 'member');
    imageId = await upload(member, await makePng(), `${XSS}.png`);
    expect((await member.post(`/images/${imageId}/rename`, { title: XSS })).status).toBe(303);
    expect((await member.post(`/images/${imageId}/visibility`, { shared: '1' })).status).toBe(303);
    const res = await member.post(`/images/${imageId}/shares`, { expiry: '1d', password: LINK_PASSWORD });
    linkPath = await shownLink(member, res);
    await t.services.notifications.deliver();
  });
  afterAll(() => t.close());

  it('shows a hostile title, file name and share password only as text, on every page that shows them', async () => {
    const anonymous = t.client();
    await anonymous.get(linkPath);
    const unlocked = await anonymous.post(linkPath, { password: LINK_PASSWORD });
    expect(unlocked.status).toBe(200);
    const pages: [string, Response][] = [
      ['gallery', await member.get('/')],
      ['shared', await admin.get('/shared')],
      ['image page', await member.get(`/images/${imageId}`)],
      ['links', await member.get('/shares')],
      ['public share', unlocked],
      ['admin changes', await admin.get('/admin/changes')],
      ['admin audit', await admin.get('/admin/audit')],
      ['admin user gallery', await admin.get(`/users/${(await t.user('member@example.com')).id}`)],
    ];
    for (const [name, res] of pages) {
      const html = await res.text();
      expect(html, name).toContain(ESCAPED);
      expect(html, name).not.toContain('<img src=x');
      expect(html, name).not.toContain('alert(2)');
    }
    const { password_hash: stored } = await t.services.database.q
      .selectFrom('share_links')
      .select('password_hash')
      .executeTakeFirstOrThrow();
    expect(stored?.startsWith('$argon2id$')).toBe(true);
    expect(await (await admin.get('/admin/audit.csv')).text()).not.toContain('alert(2)');
  });

  it('never changes anything on a GET, whatever path a link or a prefetch asks for', async () => {
    const member2 = await t.user('member@example.com');
    const linkId = (await t.services.shares.listForOwner(member2))[0]?.id as string;
    const state = async () => ({
      images: await t.count('images'),
      links: await t.count('share_links', 'revoked_at IS NULL'),
      users: await t.count('users', 'is_disabled = 0'),
      title: await t.services.database.q
        .selectFrom('images')
        .select(['title', 'is_shared'])
        .where('id', '=', imageId)
        .executeTakeFirst(),
    });
    const before = await state();
    for (const path of [
      `/images/${imageId}/delete`,
      `/images/${imageId}/rename?title=gone`,
      `/images/${imageId}/visibility?shared=0`,
      `/images/delete?ids=${imageId}&confirm=yes`,
      `/shares/${linkId}/revoke`,
      `/admin/users/${member2.id}/delete?confirm=member@example.com`,
      `/admin/users/${member2.id}/disable`,
      `/admin/users/${member2.id}/role?role=viewer`,
      '/logout',
    ]) {
      for (const client of [admin, member]) await client.get(path);
    }
    expect(await state()).toEqual(before);
    expect((await member.get('/')).status).toBe(200);
  });

  it('answers an image id that is not yours with 404 on every id-taking route, for every role', async () => {
    const other = await signUpWithRole(t, admin, 'other@example.com', 'member');
    const viewer = await signUpWithRole(t, admin, 'viewer@example.com', 'viewer');
    const secret = await upload(member, await makePng(), 'secret.png');
    for (const client of [other, viewer]) {
      for (const res of [
        await client.get(`/images/${secret}`),
        await client.get(`/images/${secret}/download`),
        await client.get(`/images/${secret}/delete`),
        await client.get(`/images/${secret}/replace`),
        await client.post(`/images/${secret}/rename`, { title: 'x' }),
        await client.post(`/images/${secret}/visibility`, { shared: '1' }),
        await client.post(`/images/${secret}/delete`),
        await client.postForm('/images/delete', [
          ['ids', secret],
          ['confirm', 'yes'],
        ]),
        await client.postJson('/uploads/presign', { name: 'x.png', replaces: secret }),
      ]) {
        expect([403, 404]).toContain(res.status);
        expect(await res.text()).not.toContain('secret.png');
      }
    }
    expect(await t.count('images', `id = '${secret}'`)).toBe(1);
  });
});
