import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, attrs, count, texts } from './support/html.js';
import { makeJpeg, makePng } from './support/images.js';
import { shownLink } from './support/share-links.js';
import { deleteForGood, upload } from './support/uploads.js';

const HOUR = 60 * 60 * 1000;

/** The album a redirect after creating or changing one points at. */
function albumIdFrom(res: Response): string {
  expect(res.status).toBe(303);
  const match = /^\/albums\/([a-z0-9]+)/.exec(res.headers.get('location') ?? '');
  expect(match).not.toBeNull();
  return match?.[1] as string;
}

/** The image ids an album page (or a fragment of it) shows as cards. */
const cardIds = (html: string) => attrs(html, 'li.thumb', 'id').map((id) => id.replace(/^image-/, ''));

describe('albums', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  let viewer: Client;
  let beach: string;
  let forest: string;
  let city: string;
  let bobs: string;
  let aliceId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    viewer = await signUpWithRole(t, admin, 'vera@example.com', 'viewer');
    beach = await upload(alice, await makeJpeg(800, 600), 'beach.jpg');
    t.advance(1000);
    forest = await upload(alice, await makePng(300, 400), 'forest.png');
    t.advance(1000);
    city = await upload(alice, await makeJpeg(640, 480), 'city.jpg');
    bobs = await upload(bob, await makePng(), 'bobs.png');
    await t.settle();
    aliceId = (await t.user('alice@example.com')).id;
  });
  afterAll(() => t.close());

  const audited = (action: string, target: string) =>
    t.count('audit_log', `action = '${action}' AND target = '${target}'`);

  it('makes an album from the gallery selection: the picker, then the new album with its images', async () => {
    const gallery = await (await alice.get('/')).text();
    expect(attrs(gallery, '#bulk-delete button', 'formaction')).toContain('/albums/add');
    const picker = await alice.postForm('/albums/add', [
      ['ids', beach],
      ['ids', forest],
    ]);
    expect(picker.status).toBe(200);
    const pickerHtml = await picker.text();
    expect(pickerHtml).toContain('Add 2 images to an album');
    expect(attrs(pickerHtml, 'input[name=ids]', 'value')).toEqual([beach, forest]);

    const res = await alice.postForm('/albums', [
      ['name', '  Holidays  '],
      ['ids', beach],
      ['ids', forest],
    ]);
    const id = albumIdFrom(res);
    const page = await alice.get(res.headers.get('location') as string);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(texts(html, 'h1')).toContain('Holidays');
    expect(html).toContain('Album created.');
    expect(cardIds(html)).toEqual([forest, beach]); // the gallery's order: newest first
    expect(await audited('album_create', id)).toBe(1);

    const list = await (await alice.get('/albums')).text();
    expect(texts(list, '.album-name')).toEqual(['Holidays']);
    expect(list).toContain('2 images');
    // The cover is the newest image's thumbnail until one is chosen.
    const forestThumb = (await t.services.images.getForUser(await t.user('alice@example.com'), forest))
      .thumbKey;
    expect(attr(list, 'img.album-cover', 'src')).toContain(forestThumb);
  });

  it('adds to an existing album without doubling, keeps an image in several albums, and removes some', async () => {
    const first = albumIdFrom(
      await alice.postForm('/albums', [
        ['name', 'Best of'],
        ['ids', beach],
      ]),
    );
    const second = albumIdFrom(
      await alice.postForm('/albums', [
        ['name', 'Blue'],
        ['ids', beach],
      ]),
    );
    const picker = await (await alice.postForm('/albums/add', [['ids', city]])).text();
    expect(attrs(picker, 'button[formaction]', 'formaction')).toEqual(
      expect.arrayContaining([`/albums/${first}/images`, `/albums/${second}/images`]),
    );

    const added = await alice.postForm(`/albums/${first}/images`, [
      ['ids', city],
      ['ids', beach],
    ]);
    expect(added.headers.get('location')).toBe(`/albums/${first}?added=1`);
    expect(await (await alice.get(added.headers.get('location') as string)).text()).toContain(
      'Added 1 image.',
    );
    expect(cardIds(await (await alice.get(`/albums/${first}`)).text())).toEqual([city, beach]);
    expect(cardIds(await (await alice.get(`/albums/${second}`)).text())).toEqual([beach]);

    const removed = await alice.postForm(`/albums/${first}/remove`, [['ids', beach]]);
    expect(removed.headers.get('location')).toBe(`/albums/${first}?removed=1`);
    expect(cardIds(await (await alice.get(`/albums/${first}`)).text())).toEqual([city]);
    expect(cardIds(await (await alice.get(`/albums/${second}`)).text())).toEqual([beach]);
    expect(cardIds(await (await alice.get('/')).text())).toContain(beach); // still in the gallery
  });

  it('uses the chosen cover, refuses one from outside the album, and falls back when it is removed', async () => {
    const id = albumIdFrom(
      await alice.postForm('/albums', [
        ['name', 'Covers'],
        ['ids', beach],
        ['ids', city],
      ]),
    );
    const owner = await t.user('alice@example.com');
    const thumbOf = async (image: string) => (await t.services.images.getForUser(owner, image)).thumbKey;
    const coverOf = async () =>
      (await t.services.albums.listForOwner(aliceId)).find((a) => a.id === id)?.coverUrl ?? '';
    expect(await coverOf()).toContain(await thumbOf(city));

    expect((await alice.postForm(`/albums/${id}/cover`, [['ids', beach]])).status).toBe(303);
    expect(await coverOf()).toContain(await thumbOf(beach));
    const outside = await alice.postForm(`/albums/${id}/cover`, [['ids', forest]]);
    expect(outside.status).toBe(400);
    expect(await outside.text()).toContain('among the album’s images');
    expect(
      (
        await alice.postForm(`/albums/${id}/cover`, [
          ['ids', beach],
          ['ids', city],
        ])
      ).status,
    ).toBe(400);

    await alice.postForm(`/albums/${id}/remove`, [['ids', beach]]);
    expect(await coverOf()).toContain(await thumbOf(city));
  });

  it('renames and deletes an album, leaving its images, with an audit row for each change', async () => {
    const id = albumIdFrom(
      await alice.postForm('/albums', [
        ['name', 'Draft'],
        ['ids', forest],
      ]),
    );
    expect((await alice.post(`/albums/${id}/rename`, { name: '' })).status).toBe(400);
    expect((await alice.post(`/albums/${id}/rename`, { name: 'Final' })).headers.get('location')).toBe(
      `/albums/${id}?renamed=1`,
    );
    expect(texts(await (await alice.get(`/albums/${id}`)).text(), 'h1')).toContain('Final');
    expect(await audited('album_rename', id)).toBe(1);

    const res = await alice.post(`/albums/${id}/delete`);
    expect(res.headers.get('location')).toBe('/albums?deleted=1');
    expect((await alice.get(`/albums/${id}`)).status).toBe(404);
    expect(await t.count('album_images', `album_id = '${id}'`)).toBe(0);
    expect(await t.count('images', `id = '${forest}'`)).toBe(1);
    expect(await audited('album_delete', id)).toBe(1);
  });

  it('takes a deleted image out of every album', async () => {
    const doomed = await upload(alice, await makePng(20, 20), 'doomed.png');
    await t.settle();
    const a = albumIdFrom(
      await alice.postForm('/albums', [
        ['name', 'A'],
        ['ids', doomed],
        ['ids', city],
      ]),
    );
    const b = albumIdFrom(
      await alice.postForm('/albums', [
        ['name', 'B'],
        ['ids', doomed],
      ]),
    );
    await alice.postForm(`/albums/${b}/cover`, [['ids', doomed]]);
    await deleteForGood(alice, doomed);
    expect(cardIds(await (await alice.get(`/albums/${a}`)).text())).toEqual([city]);
    expect(await (await alice.get(`/albums/${b}`)).text()).toContain('This album is empty');
    expect(await t.count('album_images', `image_id = '${doomed}'`)).toBe(0);
  });

  describe('who may do what', () => {
    let album: string;
    beforeAll(async () => {
      album = albumIdFrom(
        await alice.postForm('/albums', [
          ['name', 'Private'],
          ['ids', beach],
        ]),
      );
    });

    it("answers 404 for someone else's album, whatever they try, and changes nothing", async () => {
      for (const [method, path] of [
        ['get', `/albums/${album}`],
        ['post', `/albums/${album}/rename`],
        ['post', `/albums/${album}/delete`],
        ['post', `/albums/${album}/remove`],
        ['post', `/albums/${album}/images`],
        ['post', `/albums/${album}/cover`],
        ['post', `/albums/${album}/shares`],
      ] as const) {
        const res =
          method === 'get'
            ? await bob.get(path)
            : await bob.postForm(path, [
                ['name', 'mine'],
                ['ids', beach],
                ['ids', bobs],
                ['expiry', '1d'],
              ]);
        expect(`${path}: ${res.status}`).toBe(`${path}: 404`);
      }
      expect(await t.count('albums', `id = '${album}' AND name = 'Private'`)).toBe(1);
      expect(await t.count('album_images', `album_id = '${album}'`)).toBe(1);
      expect(await t.count('share_links', `album_id = '${album}'`)).toBe(0);
    });

    it("refuses to put someone else's image into an album, an admin's too", async () => {
      expect((await alice.postForm(`/albums/${album}/images`, [['ids', bobs]])).status).toBe(404);
      await bob.post(`/images/${bobs}/visibility`, { shared: '1' });
      expect((await alice.postForm(`/albums/${album}/images`, [['ids', bobs]])).status).toBe(403);
      expect((await admin.postForm(`/albums/${album}/images`, [['ids', bobs]])).status).toBe(403);
      expect(
        (
          await alice.postForm('/albums', [
            ['name', 'Theft'],
            ['ids', bobs],
          ])
        ).status,
      ).toBe(403);
      expect(await t.count('album_images', `image_id = '${bobs}'`)).toBe(0);
    });

    it('lets viewers make no album', async () => {
      expect((await viewer.get('/albums')).status).toBe(403);
      expect((await viewer.post('/albums', { name: 'Mine' })).status).toBe(403);
      expect(await (await viewer.get('/')).text()).not.toContain('href="/albums"');
    });

    it("shows admins anyone's albums, as anyone's gallery", async () => {
      const list = await admin.get(`/users/${aliceId}/albums`);
      expect(list.status).toBe(200);
      const html = await list.text();
      expect(html).toContain('Albums of alice@example.com');
      expect(texts(html, '.album-name')).toContain('Private');
      expect((await admin.get(`/albums/${album}`)).status).toBe(200);
      expect((await alice.get(`/users/${aliceId}/albums`)).status).toBe(403);
    });
  });

  it('pages through a large album like the gallery, with htmx getting only the next cards', async () => {
    await t.seedImages(aliceId, 70);
    const ids = (await t.imageIdsNewestFirst(aliceId)).slice(0, 70);
    const id = albumIdFrom(
      await alice.postForm('/albums', [['name', 'Big'], ...ids.map((i): [string, string] => ['ids', i])]),
    );
    const first = await (await alice.get(`/albums/${id}`)).text();
    expect(cardIds(first)).toEqual(ids.slice(0, 60));
    const next = attr(first, '#load-more a', 'href') as string;
    expect(next).toMatch(new RegExp(`^/albums/${id}\\?cursor=`));
    const second = await (await alice.get(next)).text();
    expect(cardIds(second)).toEqual(ids.slice(60));
    const fragment = await (await alice.get(next, { 'HX-Request': 'true' })).text();
    expect(fragment).not.toContain('<html');
    expect(cardIds(fragment)).toEqual(ids.slice(60));
    expect(count(fragment, '#load-more a')).toBe(0);
  });

  describe('sharing an album', () => {
    let album: string;
    beforeAll(async () => {
      album = albumIdFrom(
        await alice.postForm('/albums', [
          ['name', 'Trip'],
          ['ids', beach],
        ]),
      );
    });

    it('shows the album’s ready images to anyone with the link, those added later too', async () => {
      const path = await shownLink(alice, await alice.post(`/albums/${album}/shares`, { expiry: '7d' }));
      const linkId = (await t.services.albums.links(await t.user('alice@example.com'), album))[0]
        ?.id as string;
      expect(await audited('album_share', linkId)).toBe(1);
      const stranger = t.client();
      const first = await stranger.get(path);
      expect(first.status).toBe(200);
      const html = await first.text();
      expect(texts(html, 'h1')).toEqual(['Trip']);
      expect(count(html, '.shared img')).toBe(1);

      await alice.postForm(`/albums/${album}/images`, [['ids', city]]);
      // An image still processing is not shown.
      const pending = await upload(alice, await makePng(30, 30), 'pending.png');
      await t.services.database.q
        .updateTable('images')
        .set({ state: 'processing' })
        .where('id', '=', pending)
        .execute();
      await alice.postForm(`/albums/${album}/images`, [['ids', pending]]);
      const later = await (await stranger.get(path)).text();
      expect(texts(later, '.shared figcaption').map((s) => s.trim())).toEqual(['city', 'beach']);

      const links = await (await alice.get('/shares')).text();
      expect(links).toContain(`href="/albums/${album}"`);
      expect(await (await alice.get(`/albums/${album}`)).text()).toContain(`/shares/${linkId}/revoke`);
    });

    it('asks for the password, and the right one shows the album', async () => {
      const path = await shownLink(
        alice,
        await alice.post(`/albums/${album}/shares`, { expiry: '1d', password: 'open sesame' }),
      );
      const visitor = t.client();
      expect(await (await visitor.get(path)).text()).toContain('This link needs a password');
      expect((await visitor.post(path, { password: 'wrong one' })).status).toBe(401);
      const ok = await visitor.post(path, { password: 'open sesame' });
      expect(ok.status).toBe(200);
      expect(texts(await ok.text(), 'h1')).toEqual(['Trip']);
      expect((await alice.post(`/albums/${album}/shares`, { expiry: '1d', password: 'ab' })).status).toBe(
        400,
      );
    });

    it('answers 410 once the link expires, is revoked, or its album is deleted', async () => {
      const expiring = await shownLink(alice, await alice.post(`/albums/${album}/shares`, { expiry: '1h' }));
      t.advance(1000); // the newest link below is this next one
      const revoked = await shownLink(
        alice,
        await alice.post(`/albums/${album}/shares`, { expiry: 'never' }),
      );
      const [newest] = await t.services.albums.links(await t.user('alice@example.com'), album);
      expect((await bob.post(`/shares/${newest?.id}/revoke`)).status).toBe(404);
      const res = await alice.post(`/shares/${newest?.id}/revoke`, { back: `/albums/${album}` });
      expect(res.headers.get('location')).toBe(`/albums/${album}`);
      expect((await t.client().get(revoked)).status).toBe(410);

      t.advance(HOUR + 1000);
      expect((await t.client().get(expiring)).status).toBe(410);

      const lasting = await shownLink(
        alice,
        await alice.post(`/albums/${album}/shares`, { expiry: 'never' }),
      );
      expect((await t.client().get(lasting)).status).toBe(200);
      await alice.post(`/albums/${album}/delete`);
      const gone = await t.client().get(lasting);
      expect(gone.status).toBe(410);
    });
  });
});
