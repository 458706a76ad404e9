import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, attrs, count, texts } from './support/html.js';
import { makeJpeg } from './support/images.js';
import { shownLink } from './support/share-links.js';
import { upload } from './support/uploads.js';

/** The images a share page (or a further page of it) shows, by the viewer links' ids. */
const shownIds = (html: string) => attrs(html, 'figure a.viewer-link', 'data-image-id');
const nextHref = (html: string) => attr(html, '#load-more a', 'href')?.replaceAll('&amp;', '&');

describe('an album link with more images than one page', () => {
  let t: TestApp;
  let alice: Client;
  let album: string;
  /** the album's images, newest upload first: 129 seeded rows, then one real upload (the oldest) */
  let expected: string[];
  let oldest: string;

  beforeAll(async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    oldest = await upload(alice, await makeJpeg(64, 48), 'oldest.jpg');
    await t.settle();
    const ownerId = (await t.user('alice@example.com')).id;
    const start = t.now() + 1000;
    const rows = Array.from({ length: 129 }, (_, i) => {
      const id = randomUUID().replaceAll('-', '');
      return {
        id,
        owner_id: ownerId,
        title: `Seeded ${i}`,
        original_name: `seed-${i}.jpg`,
        original_key: `users/${ownerId}/originals/${id}`,
        display_key: `users/${ownerId}/display/${id}.webp`,
        thumb_key: `users/${ownerId}/thumbs/${id}.webp`,
        content_type: 'image/jpeg',
        bytes: 100,
        width: 10,
        height: 10,
        // Two share each upload time, so the keyset's tie-break on id is paged through too.
        created_at: start + Math.floor(i / 2),
        updated_at: start,
      };
    });
    await t.services.database.q.insertInto('images').values(rows).execute();
    const res = await alice.postForm('/albums', [
      ['name', 'Big trip'],
      ['ids', oldest],
      ...rows.map((r): [string, string] => ['ids', r.id]),
    ]);
    album = /^\/albums\/([a-z0-9]+)/.exec(res.headers.get('location') ?? '')?.[1] as string;
    const byNewest = [...rows].sort((a, b) => b.created_at - a.created_at || (b.id < a.id ? -1 : 1));
    expected = [...byNewest.map((r) => r.id), oldest];
  });
  afterAll(() => t.close());

  it('shows 60 at a time: "Load more" with htmx appends the next ones, each once, in order', async () => {
    const path = await shownLink(alice, await alice.post(`/albums/${album}/shares`, { expiry: '7d' }));
    const stranger = t.client();
    const first = await (await stranger.get(path)).text();
    expect(texts(first, 'h1')).toEqual(['Big trip']);
    expect(first).toContain('130 images');
    expect(shownIds(first)).toEqual(expected.slice(0, 60));
    const more = attrs(first, '#load-more a', 'hx-trigger');
    expect(more).toEqual(['click, revealed']);

    const second = await (await stranger.get(nextHref(first) as string, { 'HX-Request': 'true' })).text();
    expect(second).not.toContain('<html');
    expect(shownIds(second)).toEqual(expected.slice(60, 120));
    expect(attr(second, '#load-more', 'hx-swap-oob')).toBe('true');
    const third = await (await stranger.get(nextHref(second) as string, { 'HX-Request': 'true' })).text();
    expect(shownIds(third)).toEqual(expected.slice(120));
    expect(count(third, '#load-more a')).toBe(0);

    // One opening, however many pages it loads.
    const linkId = (await t.services.albums.links(await t.user('alice@example.com'), album))[0]?.id;
    expect(await t.count('share_links', `id = '${linkId}' AND view_count = 1`)).toBe(1);
  });

  it('without JavaScript, "Load more" is a page of its own with the next images and the link after', async () => {
    const path = await shownLink(alice, await alice.post(`/albums/${album}/shares`, { expiry: '7d' }));
    const stranger = t.client();
    const first = await (await stranger.get(path)).text();
    const res = await stranger.get(nextHref(first) as string);
    expect(res.status).toBe(200);
    const second = await res.text();
    expect(texts(second, 'h1')).toEqual(['Big trip']);
    expect(shownIds(second)).toEqual(expected.slice(60, 120));
    expect(nextHref(second)).toMatch(/^\/s\/[a-z2-7]{32}\?cursor=\d+\.[a-z0-9]+$/);
  });

  it('a further page of a link with a password asks it of a browser that has not given it', async () => {
    const path = await shownLink(
      alice,
      await alice.post(`/albums/${album}/shares`, { expiry: '1d', password: 'open sesame' }),
    );
    const visitor = t.client();
    const ok = await (await visitor.post(path, { password: 'open sesame' })).text();
    const second = nextHref(ok) as string;
    expect(shownIds(ok)).toHaveLength(60);

    const stranger = t.client(); // a page address copied without the password
    const asked = await (await stranger.get(second, { 'HX-Request': 'true' })).text();
    expect(asked).toContain('This link needs a password');
    expect(shownIds(asked)).toEqual([]);
    expect(shownIds(await (await visitor.get(second)).text())).toEqual(expected.slice(60, 120));
  });

  it('downloads an image on a later page, and refuses a cursor that does not decode', async () => {
    const path = await shownLink(
      alice,
      await alice.post(`/albums/${album}/shares`, { expiry: '7d', download: 'copy' }),
    );
    const stranger = t.client();
    const res = await stranger.get(`${path}/download/${oldest}`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain('X-Amz-Signature');
    expect((await stranger.get(`${path}/download/not-in-the-album`)).status).toBe(404);
    for (const bad of ['abc', '1.2.3', '%00', `t1.${'a'.repeat(65)}`])
      expect((await stranger.get(`${path}?cursor=${bad}`)).status, bad).toBe(400);
    // A link to chosen images has one page.
    const single = await shownLink(alice, await alice.post(`/images/${oldest}/shares`, { expiry: '7d' }));
    expect((await stranger.get(`${single}?cursor=999999999999999.zz`)).status).toBe(400);
    // A cursor past the end is an empty page, not an error.
    const end = await stranger.get(`${path}?cursor=0.0`);
    expect(end.status).toBe(200);
    expect(shownIds(await end.text())).toEqual([]);
  });
});
