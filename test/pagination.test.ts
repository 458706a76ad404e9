import { inspectRoutes } from 'hono/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANGES_PAGE_SIZE } from '../src/services/notifications.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, type TestApp } from './support/app.js';

/** Links that no page ever writes: wrong shape, wrong alphabet, too long, an old opaque cursor. */
const MALFORMED = [
  'abc',
  '-5',
  '%00',
  '1.2.3',
  '1.ABC',
  '99999999999999999999999',
  Buffer.from('1712345678901.abc').toString('base64url'),
  'A'.repeat(5000),
];

describe('paginated pages', () => {
  let t: TestApp;
  let admin: Client;
  /** Every page that pages with ?cursor=, and a well-formed cursor of its kind: a new one belongs here. */
  let pages: { route: string; path: string; wellFormed: string }[];
  let ownerId: string;
  let imageId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    const owner = await t.user('admin@example.com');
    await t.seedImages(owner.id, 61);
    const ids = await t.imageIdsNewestFirst(owner.id);
    ownerId = owner.id;
    imageId = ids[0] as string;
    for (const id of ids) await t.services.images.setShared({ user: owner, ip: 'test' }, id, true);
    for (const id of ids.slice(0, CHANGES_PAGE_SIZE + 1))
      await t.services.notifications.recordChange(null, 'outside_upload', id, `seeded ${id}`);
    for (let i = 0; i < 120; i++)
      await t.services.audit.record({ action: 'login', actor: null, target: `bulk ${i}` });
    // An album of all 61, so its page pages too.
    const album = await t.services.albums.create({ user: owner, ip: 'test' }, 'Everything', ids);
    // And its share link, whose page shows 60 at a time.
    const { token } = await t.services.shares.createForAlbum({ user: owner, ip: 'test' }, album, {
      expiry: '1d',
      allowDownload: false,
    });
    pages = [
      { route: '/s/:token', path: `/s/${token}`, wellFormed: '1.abc' },
      { route: '/', path: '/', wellFormed: '1.abc' },
      { route: '/albums/:id', path: `/albums/${album.id}`, wellFormed: '1.abc' },
      { route: '/users/:id', path: `/users/${owner.id}`, wellFormed: '1.abc' },
      { route: '/shared', path: '/shared', wellFormed: '1.abc' },
      { route: '/admin/changes', path: '/admin/changes', wellFormed: '1' },
      { route: '/admin/audit', path: '/admin/audit', wellFormed: '1' },
    ];
  });
  afterAll(() => t.close());

  it('answers a malformed cursor with 400 and the error page on every paginated page', async () => {
    for (const { path } of pages) {
      for (const cursor of MALFORMED) {
        const what = `${path}?cursor=${cursor.slice(0, 30)}`;
        const res = await admin.get(`${path}?cursor=${cursor}`);
        expect(res.status, what).toBe(400);
        const html = await res.text();
        expect(html, what).toContain('<h1>That did not work</h1>');
        expect(html, what).toContain('That page link is not valid. Start again from the first page.');
      }
    }
  });

  it('answers a malformed cursor from htmx with 400 and the error fragment', async () => {
    for (const { path } of pages) {
      const res = await admin.get(`${path}?cursor=abc`, { 'HX-Request': 'true' });
      expect(res.status, path).toBe(400);
      expect(await res.text(), path).toContain('role="alert"');
    }
  });

  it('takes a well-formed cursor that names no row as an empty last page, and no cursor as the first', async () => {
    for (const { path, wellFormed } of pages) {
      expect((await admin.get(`${path}?cursor=${wellFormed}`)).status, path).toBe(200);
      expect((await admin.get(`${path}?cursor=`)).status, path).toBe(200);
    }
  });

  it('follows each page’s own link to the next page', async () => {
    for (const { path } of pages) {
      const first = await (await admin.get(path)).text();
      const next = first
        .match(/href="([^"]*[?&]cursor=[^"]+)"/)?.[1]
        ?.replaceAll('&amp;', '&')
        .replaceAll('&#x2F;', '/');
      expect(next, path).toBeTruthy();
      const res = await admin.get(next as string);
      expect(res.status, next).toBe(200);
      expect(await res.text(), next).not.toBe(first);
    }
  });

  it('lists every route that reads a cursor', async () => {
    const readsCursor: string[] = [];
    for (const { method, path, isMiddleware } of inspectRoutes(t.app)) {
      if (method !== 'GET' || isMiddleware || path.includes('*')) continue;
      const url = path
        .replace(/^\/images\/:id/, `/images/${imageId}`)
        .replace(':id', ownerId)
        .replace(':token', 'x');
      const res = await admin.get(`${url}?cursor=abc`);
      if ((await res.text()).includes('That page link is not valid')) readsCursor.push(path);
    }
    expect(readsCursor.sort()).toEqual(pages.map((p) => p.route).sort());
  });
});
