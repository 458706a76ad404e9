import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/services/tokens.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, attrs, text, texts } from './support/html.js';
import { makeJpeg, makePng } from './support/images.js';
import { shownLink } from './support/share-links.js';
import { deleteForGood, upload, uploadWithJs } from './support/uploads.js';

const HOUR = 60 * 60 * 1000;
const MINUTE = 60 * 1000;
/** With TRUST_PROXY=true the client address is the last X-Forwarded-For entry. */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

const imageUrls = (html: string) => attrs(html, 'img', 'src');

describe('sharing', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  let viewer: Client;
  let photo: string;
  let secret: string;

  beforeAll(async () => {
    t = await makeTestApp({ env: { TRUST_PROXY: 'true' } });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    viewer = await signUpWithRole(t, admin, 'vera@example.com', 'viewer');
    photo = await upload(alice, await makeJpeg(800, 600), '<b>Beach</b>.jpg');
    secret = await upload(alice, await makePng(), 'secret.png');
    await t.settle();
  });
  afterAll(() => t.close());

  describe('visible to all signed-in users', () => {
    it('lists nothing on /shared until the owner shows an image, then everyone signed in sees it', async () => {
      expect(await (await bob.get('/shared')).text()).toContain('Nothing shared yet');
      expect((await bob.get(`/images/${photo}`)).status).toBe(404);

      const res = await alice.post(`/images/${photo}/visibility`, { shared: '1' });
      expect(res.status).toBe(303);
      for (const who of [bob, viewer, admin]) {
        const html = await (await who.get('/shared')).text();
        expect(html).toContain(`/images/${photo}`);
        expect(html).not.toContain(`/images/${secret}`);
      }
      const asViewer = await viewer.get(`/images/${photo}`);
      expect(asViewer.status).toBe(200);
      const page = await asViewer.text();
      // Escaped, and read-only for anyone but the owner.
      expect(page).toContain('&lt;b&gt;Beach&lt;/b&gt;');
      expect(page).not.toContain('<b>Beach</b>');
      expect(page).not.toContain('action="/images/');
      expect((await viewer.get(`/images/${photo}/download`)).status).toBe(303);
      expect((await t.client().get('/shared')).status).toBe(303); // logged out: to the login page
    });

    it('lets nobody but the owner or an admin change a shared image', async () => {
      expect((await bob.post(`/images/${photo}/rename`, { title: 'mine now' })).status).toBe(403);
      expect((await bob.post(`/images/${photo}/delete`)).status).toBe(403);
      expect((await viewer.post(`/images/${photo}/delete`)).status).toBe(403);
      expect((await bob.post(`/images/${photo}/visibility`, { shared: '0' })).status).toBe(403);
      expect((await bob.post(`/images/${photo}/shares`, { expiry: '1d' })).status).toBe(403);
      expect(await t.count('images', `id = '${photo}'`)).toBe(1);
      expect((await bob.get(`/images/${secret}`)).status).toBe(404);
    });

    it('hides the image again when the owner makes it private', async () => {
      await alice.post(`/images/${photo}/visibility`, { shared: '0' });
      expect((await bob.get(`/images/${photo}`)).status).toBe(404);
      expect(await (await bob.get('/shared')).text()).not.toContain(`/images/${photo}`);
    });
  });

  describe('share links', () => {
    it('shows a new link once, at the top of the page a POST-redirect-GET lands on, and makes one link per press', async () => {
      // Before any: the Links page says how one is made.
      expect(text(await (await bob.get('/shares')).text(), 'main')).toContain(
        'No share links yet. To make one, tick images in your gallery and press Share selected',
      );
      const before = await t.count('share_links');
      const made = await alice.post(`/images/${photo}/shares`, { expiry: '1d' });
      expect(made.status).toBe(303);
      expect(made.headers.get('location')).toBe(`/images/${photo}`);
      const cookie = made.headers.getSetCookie().find((c) => c.startsWith('s3g_new_link='));
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Strict/i);
      expect(cookie).toMatch(/Max-Age=600/i);
      // Copied by someone else (another account, or set by another site): it shows them nothing.
      const bobCopy = bob.clone();
      bobCopy.cookies.set('s3g_new_link', alice.cookies.get('s3g_new_link') as string);
      expect(await (await bobCopy.get(`/images/${photo}`)).text()).not.toContain('new-share-link');
      // A made-up token for alice's link shows her nothing either.
      const [id] = (alice.cookies.get('s3g_new_link') as string).split('.');
      const forged = alice.clone();
      forged.cookies.set('s3g_new_link', `${id}.${'a'.repeat(32)}`);
      expect(await (await forged.get(`/images/${photo}`)).text()).not.toContain('new-share-link');
      // Another page opened first (another tab), or htmx's refresh of this one, leaves it for the page it is for.
      expect(await (await alice.get('/shares')).text()).not.toContain('new-share-link');
      expect(await (await alice.get(`/images/${photo}`, { 'HX-Request': 'true' })).text()).not.toContain(
        'new-share-link',
      );
      // Alice's page shows it above the image, with a Copy button the script reveals.
      const html = await (await alice.get(`/images/${photo}`)).text();
      expect(html.indexOf('id="new-share-link"')).toBeLessThan(html.indexOf('<figure'));
      expect(html).toContain('data-copy="new-share-link"');
      // A reload shows it no more, and made no second link.
      expect(await (await alice.get(`/images/${photo}`)).text()).not.toContain('new-share-link');
      expect(await t.count('share_links')).toBe(before + 1);
    });

    it('shows the display rendition to anyone with the link, counts views, and keeps the token hashed', async () => {
      const path = await shownLink(alice, await alice.post(`/images/${photo}/shares`, { expiry: '1d' }));
      const token = path.split('/').pop() as string;
      expect(await t.count('share_links', `token_hash = '${token}'`)).toBe(0);

      const stranger = t.client();
      const res = await stranger.get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-robots-tag')).toContain('noindex');
      const html = await res.text();
      expect(html).toContain('&lt;b&gt;Beach&lt;/b&gt;');
      expect(html).not.toContain('Download original');
      expect(html).not.toContain('href="/login"'); // the bare layout: no way into the app
      const [display] = imageUrls(html);
      const image = await t.services.images.getForUser(await t.user('alice@example.com'), photo);
      expect(display).toContain(encodeURIComponent(image.displayKey).replaceAll('%2F', '/'));
      expect(display).not.toContain('originals');
      expect(new URL(display as string).searchParams.get('X-Amz-Expires')).toBe('600');
      const bytes = await fetch(display as string);
      expect(bytes.status).toBe(200);
      expect(bytes.headers.get('content-type')).toBe('image/webp');

      await stranger.get(path);
      const own = await (await alice.get(`/images/${photo}`)).text();
      expect(texts(own, 'td')).toContain('2'); // two views
      expect(await (await alice.get('/shares')).text()).toContain('&lt;b&gt;Beach&lt;/b&gt;');
    });

    it('writes one audit row per link and address for 2,000 openings, with their count, when the window closes', async () => {
      const path = await shownLink(alice, await alice.post(`/images/${photo}/shares`, { expiry: '1d' }));
      const link = await t.services.database.q
        .selectFrom('share_links')
        .select('id')
        .where('token_hash', '=', sha256Hex(path.split('/').pop() as string))
        .executeTakeFirstOrThrow();
      const linkId = link.id;
      const opened = () =>
        t.services.database.q
          .selectFrom('audit_log')
          .select(['target', 'ip', 'detail'])
          .where('action', '=', 'share_open')
          .where('target', '=', linkId)
          .orderBy('id')
          .execute();
      // Anyone holding the link, reloading it from a script: every opening still counts as a view.
      for (let batch = 0; batch < 20; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 100 }, () => t.client().get(path, from('198.51.100.20'))),
        );
        expect(answers.map((r) => r.status)).toEqual(Array(100).fill(200));
      }
      await t.client().get(path, from('203.0.113.20'));
      expect(await opened()).toEqual([]);
      expect(await t.count('share_links', `id = '${linkId}' AND view_count = 2001`)).toBe(1);

      t.advance(15 * MINUTE);
      await t.services.audit.flushCounts();
      const rows = await opened();
      expect(rows.map((r) => [r.ip, (r.detail ?? '').split(' ').slice(0, 2).join(' ')])).toEqual([
        ['198.51.100.20', '2000 opening(s)'],
        ['203.0.113.20', '1 opening(s)'],
      ]);
    });

    it('answers 410 once a link expires, and 404 for a token that never existed', async () => {
      const path = await shownLink(alice, await alice.post(`/images/${photo}/shares`, { expiry: '1h' }));
      expect((await t.client().get(path)).status).toBe(200);
      t.advance(HOUR + 1000);
      const gone = await t.client().get(path);
      expect(gone.status).toBe(410);
      expect(await gone.text()).toContain('This link has expired');
      expect((await t.client().get(`/s/${'a'.repeat(32)}`)).status).toBe(404);
      expect((await t.client().get('/s/not-a-token')).status).toBe(404);
    });

    it('turns a link off for good when the owner revokes it, and only the owner can', async () => {
      const path = await shownLink(alice, await alice.post(`/images/${photo}/shares`, { expiry: 'never' }));
      const linkId = (await t.services.shares.listForOwner(await t.user('alice@example.com')))[0]
        ?.id as string;
      expect((await bob.post(`/shares/${linkId}/revoke`)).status).toBe(404);
      expect((await t.client().get(path)).status).toBe(200);
      const res = await alice.post(`/shares/${linkId}/revoke`, { back: `/images/${photo}?revoked=1` });
      expect(res.headers.get('location')).toBe(`/images/${photo}?revoked=1`);
      const gone = await t.client().get(path);
      expect(gone.status).toBe(410);
      expect(await gone.text()).toContain('turned off');
    });

    it('gives a full-size copy without location by default, made once and kept, or the original when chosen', async () => {
      const original = await makeJpeg(1200, 800, { gps: true });
      const id = await upload(alice, original, 'Where we stayed.jpg');
      await t.settle();
      const visitor = t.client();
      const copyLink = await shownLink(
        alice,
        await alice.post(`/images/${id}/shares`, { expiry: '7d', download: 'copy' }),
      );
      const page = await (await visitor.get(copyLink)).text();
      expect(text(page, '.shared figcaption a.button')).toBe('Download Where we stayed');
      // Two visitors at once: one copy is made, and both get it.
      const [first, second] = await Promise.all([
        visitor.get(`${copyLink}/download/${id}`),
        t.client().get(`${copyLink}/download/${id}`),
      ]);
      const locations = [first, second].map((r) => new URL(r.headers.get('location') as string));
      expect(locations[0]?.pathname).toBe(locations[1]?.pathname);
      const file = await fetch(locations[0] as URL);
      expect(file.headers.get('content-disposition')).toContain('Where we stayed.jpg');
      const copy = Buffer.from(await file.arrayBuffer());
      const meta = await sharp(copy).metadata();
      expect([meta.format, meta.width, meta.height, meta.exif]).toEqual(['jpeg', 1200, 800, undefined]);
      const { share_copy_key: key } = await t.services.database.q
        .selectFrom('images')
        .select('share_copy_key')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(key).toMatch(/\/copies\//);
      expect((await t.services.storage.head(key as string))?.size).toBe(copy.length);
      // Only what the link shows, only as the link allows.
      expect((await visitor.get(`${copyLink}/download/${photo}`)).status).toBe(404);
      const viewOnly = await shownLink(alice, await alice.post(`/images/${id}/shares`, { expiry: '7d' }));
      expect(attrs(await (await visitor.get(viewOnly)).text(), '.shared figcaption a', 'href')).toEqual([]);
      expect((await visitor.get(`${viewOnly}/download/${id}`)).status).toBe(404);

      // The original, when the owner chose it: the very bytes uploaded, location and all.
      const originalLink = await shownLink(
        alice,
        await alice.post(`/images/${id}/shares`, { expiry: '7d', download: 'original' }),
      );
      const shown = await (await visitor.get(originalLink)).text();
      expect(text(shown, '.shared figcaption a.button')).toBe('Download original Where we stayed');
      const href = attr(shown, '.shared figcaption a.button', 'href') as string;
      expect(Buffer.from(await (await fetch(href)).arrayBuffer()).equals(original)).toBe(true);
      expect((await visitor.get(`${originalLink}/download/${id}`)).status).toBe(404);

      // A new file replaces the copy too: the next download makes one of the new file.
      const { done } = await uploadWithJs(alice, await makePng(300, 200), 'newer.png', 'image/png', id);
      expect(done.status).toBe(200);
      await t.settle();
      expect(await t.services.storage.head(key as string)).toBeNull();
      const fresh = await visitor.get(`${copyLink}/download/${id}`);
      const newer = await sharp(
        Buffer.from(await (await fetch(fresh.headers.get('location') as string)).arrayBuffer()),
      ).metadata();
      expect([newer.format, newer.width]).toEqual(['png', 300]);
      const { share_copy_key: newKey } = await t.services.database.q
        .selectFrom('images')
        .select('share_copy_key')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();

      // Deleted for good, the copy goes with it.
      await deleteForGood(alice, id);
      expect(await t.services.storage.head(newKey as string)).toBeNull();
    });

    it('asks for the password, refuses a wrong one, and lets the right one show the images', async () => {
      const path = await shownLink(
        alice,
        await alice.post(`/images/${photo}/shares`, {
          expiry: '7d',
          password: 'open sesame',
          allow_download: '1',
        }),
      );
      const visitor = t.client();
      const ask = await (await visitor.get(path)).text();
      expect(ask).toContain('This link needs a password');
      expect(imageUrls(ask)).toEqual([]);
      expect((await visitor.post(path, { password: 'wrong' })).status).toBe(401);
      const ok = await visitor.post(path, { password: 'open sesame' });
      expect(ok.status).toBe(200);
      const html = await ok.text();
      const device = ok.headers.getSetCookie().find((line) => line.startsWith('s3g_link_device=')) ?? '';
      expect(device).toContain(`Path=${path}`);
      expect(device).toMatch(/HttpOnly/);
      // Its download (a copy without location, the default) goes to this browser, which gave the
      // password; another that did not is sent to the page that asks for it.
      const download = attr(html, '.shared figcaption a.button', 'href') as string;
      expect(download).toBe(`${path}/download/${photo}`);
      const given = await visitor.get(download);
      expect(given.status).toBe(303);
      const file = await fetch(given.headers.get('location') as string);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-disposition')).toMatch(/^attachment;/);
      const stranger = await t.client().get(download);
      expect(stranger.status).toBe(303);
      expect(stranger.headers.get('location')).toBe(path);
    });

    it("locks a stranger's address out of a link after 10 wrong guesses, not the recipient elsewhere or in a browser that opened it", async () => {
      const path = await shownLink(
        alice,
        await alice.post(`/images/${photo}/shares`, { expiry: '7d', password: 'open sesame' }),
      );
      const recipient = t.client();
      expect((await recipient.post(path, { password: 'open sesame' }, from('192.0.2.1'))).status).toBe(200);

      const stranger = t.client();
      for (let i = 0; i < 10; i++)
        expect((await stranger.post(path, { password: `guess ${i}` }, from('192.0.2.1'))).status).toBe(401);
      const blocked = await stranger.post(path, { password: 'open sesame' }, from('192.0.2.1'));
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await blocked.text()).toContain('Too many wrong passwords');

      // Same address, the browser that opened the link before; and a fresh browser elsewhere.
      expect((await recipient.post(path, { password: 'open sesame' }, from('192.0.2.1'))).status).toBe(200);
      expect((await t.client().post(path, { password: 'open sesame' }, from('203.0.113.4'))).status).toBe(
        200,
      );
      t.advance(15 * MINUTE + 1000);
      expect((await stranger.post(path, { password: 'open sesame' }, from('192.0.2.1'))).status).toBe(200);
    });

    it('slows guessing of one link from many addresses with growing delays, still without locking out its known browser', async () => {
      const path = await shownLink(
        alice,
        await alice.post(`/images/${photo}/shares`, { expiry: '7d', password: 'open sesame' }),
      );
      const recipient = t.client();
      expect((await recipient.post(path, { password: 'open sesame' }, from('192.0.2.1'))).status).toBe(200);
      for (let i = 0; i < 20; i++)
        expect(
          (await t.client().post(path, { password: `guess ${i}` }, from(`198.51.100.${i}`))).status,
        ).toBe(401);
      const slowed = await t.client().post(path, { password: 'open sesame' }, from('203.0.113.7'));
      expect(slowed.status).toBe(429);
      expect(Number(slowed.headers.get('retry-after'))).toBe(1);
      expect((await recipient.post(path, { password: 'open sesame' }, from('192.0.2.1'))).status).toBe(200);
      // A made-up device cookie is no way around the delay.
      const pretender = t.client();
      pretender.cookies.set(
        's3g_link_device',
        recipient.cookies.get('s3g_link_device')?.replace(/\.[^.]+$/, '.x') ?? 'x',
      );
      expect((await pretender.post(path, { password: 'open sesame' }, from('203.0.113.8'))).status).toBe(429);
    });

    it("answers 410 for a disabled owner's links until the account is enabled again", async () => {
      const carol = await signUpWithRole(t, admin, 'carol@example.com', 'member');
      const image = await upload(carol, await makePng(), 'carol.png');
      const open = await shownLink(carol, await carol.post(`/images/${image}/shares`, { expiry: '7d' }));
      const locked = await shownLink(
        carol,
        await carol.post(`/images/${image}/shares`, { expiry: '7d', password: 'open sesame' }),
      );
      const carolId = (await t.user('carol@example.com')).id;
      expect((await admin.post(`/admin/users/${carolId}/disable`)).status).toBe(303);
      for (const res of [
        await t.client().get(open),
        await t.client().get(locked),
        await t.client().post(locked, { password: 'open sesame' }),
      ]) {
        expect(res.status).toBe(410);
        const html = await res.text();
        expect(html).toContain('This link is no longer available');
        expect(imageUrls(html)).toEqual([]);
      }
      expect((await admin.post(`/admin/users/${carolId}/enable`)).status).toBe(303);
      expect((await t.client().get(open)).status).toBe(200);
    });

    it('shares a selection from the gallery as one link', async () => {
      const options = await alice.postForm('/shares/new', [
        ['ids', photo],
        ['ids', secret],
      ]);
      expect(options.status).toBe(200);
      expect(await options.text()).toContain('Share 2 images');
      const path = await shownLink(
        alice,
        await alice.postForm('/shares', [
          ['ids', photo],
          ['ids', secret],
          ['expiry', '30d'],
        ]),
      );
      const html = await (await t.client().get(path)).text();
      expect(html).toContain('2 shared images');
      expect(imageUrls(html)).toHaveLength(2);
      // Someone else's image cannot be slipped into a selection.
      const bobs = await upload(bob, await makePng(), 'bob.png');
      const res = await alice.postForm('/shares', [
        ['ids', photo],
        ['ids', bobs],
        ['expiry', '1d'],
      ]);
      expect(res.status).toBe(404);
    });

    it('refuses a made-up expiry and viewers creating links', async () => {
      expect((await alice.post(`/images/${photo}/shares`, { expiry: '99y' })).status).toBe(400);
      const shown = await alice.post(`/images/${photo}/visibility`, { shared: '1' });
      expect(shown.status).toBe(303);
      expect((await viewer.post(`/images/${photo}/shares`, { expiry: '1d' })).status).toBe(403);
      expect((await viewer.get('/shares')).status).toBe(403);
    });

    it('answers 410 when the images behind a link were deleted', async () => {
      const doomed = await upload(alice, await makePng(), 'doomed.png');
      const path = await shownLink(alice, await alice.post(`/images/${doomed}/shares`, { expiry: '1d' }));
      await alice.post(`/images/${doomed}/delete`);
      expect((await t.client().get(path)).status).toBe(410);
    });
  });

  describe('downloads, audited', () => {
    it('records each download of an original, and counts a link’s downloads per address like its openings', async () => {
      const rows = (action: string) =>
        t.services.database.q
          .selectFrom('audit_log')
          .select(['actor_email', 'target', 'detail'])
          .where('action', '=', action)
          .orderBy('id')
          .execute();
      const before = (await rows('download')).length;
      expect((await alice.get(`/images/${photo}/download`)).status).toBe(303);
      expect((await rows('download')).slice(before)).toEqual([
        { actor_email: 'alice@example.com', target: photo, detail: null },
      ]);

      const path = await shownLink(
        alice,
        await alice.post(`/images/${photo}/shares`, { expiry: '1d', download: 'copy' }),
      );
      const visitor = t.client();
      for (let i = 0; i < 2; i++) expect((await visitor.get(`${path}/download/${photo}`)).status).toBe(303);
      await t.services.audit.flushCounts(true);
      const link = await t.services.database.q
        .selectFrom('share_links')
        .select('id')
        .where('token_hash', '=', sha256Hex(path.split('/').pop() as string))
        .executeTakeFirstOrThrow();
      const counted = (await rows('share_download')).filter((r) => r.target === link.id);
      expect(counted).toHaveLength(1);
      expect(counted[0]?.detail).toMatch(/^2 download\(s\) between /);
    });
  });
});
