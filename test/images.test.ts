import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { all, attr, attrs, hiddenForm, markup, text } from './support/html.js';
import {
  canMakeHeic,
  HTML,
  makeAnimatedGif,
  makeHeic,
  makeJpeg,
  makePng,
  SVG,
  TEXT_AS_PNG,
} from './support/images.js';
import {
  deleteForGood,
  expectBucketMatchesRows,
  type Policy,
  postToBucket,
  untilOriginalsStored,
  upload,
  uploadWithJs,
} from './support/uploads.js';

/** What a browser with JavaScript off does with the upload page's form. */
async function uploadWithoutJs(client: Client, bytes: Buffer, path = '/upload', name = 'from-a-form.jpg') {
  const html = await (await client.get(path)).text();
  const { action, fields } = hiddenForm(html, '#upload-form');
  expect(action).toBeTruthy();
  const form = new FormData();
  for (const [name, value] of fields) form.append(name, value);
  form.append('file', new Blob([new Uint8Array(bytes)]), name);
  const res = await fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
  expect(res.status).toBe(303);
  const location = new URL(res.headers.get('location') ?? '');
  expect(location.pathname).toBe('/uploads/complete');
  return location;
}

describe('images', () => {
  let t: TestApp;
  let alice: Client;
  let bob: Client;
  let viewer: Client;
  let admin: Client;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    viewer = await signUpWithRole(t, admin, 'viewer@example.com', 'viewer');
  });
  afterAll(() => t.close());

  it('uploads a JPEG with JavaScript: gallery, image page, download of the same bytes', async () => {
    const jpeg = await makeJpeg(1200, 800, { gps: true });
    const id = await upload(alice, jpeg, 'Holiday beach.jpg');
    await t.settle();

    const gallery = await (await alice.get('/')).text();
    expect(gallery).toContain('Holiday beach');
    expect(gallery).not.toContain('No images yet');
    expect(attrs(gallery, 'img', 'src')).toContainEqual(
      expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/s3\/[^"]+thumbs/),
    );

    const pageRes = await alice.get(`/images/${id}`);
    expect(pageRes.status).toBe(200);
    const page = await pageRes.text();
    expect(page).toContain('Holiday beach.jpg');
    expect(page).toContain('1200 × 800');
    expect(page).toContain('JPEG');
    expect(page).toContain('1 Jun 2024');

    const display = attr(page, 'figure.display > img:first-child', 'src');
    const displayRes = await fetch(display as string);
    expect(displayRes.status).toBe(200);
    const displayBytes = Buffer.from(await displayRes.arrayBuffer());
    const meta = await sharp(displayBytes).metadata();
    expect(meta.format).toBe('webp');
    expect(meta.width).toBe(1200);
    expect(meta.exif).toBeUndefined();

    const download = await alice.get(`/images/${id}/download`);
    expect(download.status).toBe(303);
    const file = await fetch(download.headers.get('location') as string);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-disposition')).toMatch(
      /^attachment;.*filename\*=UTF-8''Holiday%20beach\.jpg/,
    );
    expect(Buffer.from(await file.arrayBuffer()).equals(jpeg)).toBe(true);
  });

  it('turns images upright and makes a thumbnail no larger than 400 px', async () => {
    const id = await upload(alice, await makeJpeg(600, 300, { orientation: 6 }), 'sideways.jpg');
    await t.settle();
    const image = await t.services.images.getForUser(await t.user('alice@example.com'), id);
    expect([image.width, image.height]).toEqual([300, 600]);
    const thumb = await t.services.storage.getRange(image.thumbKey, 0, 1_000_000);
    const meta = await sharp(Buffer.from(thumb)).metadata();
    expect(meta.height).toBe(400);
    expect(meta.width).toBe(200);
  });

  it.skipIf(!canMakeHeic)(
    'takes an iPhone HEIC photo: WebP copies to look at, the original kept byte for byte',
    async () => {
      const heic = await makeHeic(900, 600, { r: 30, g: 140, b: 200 });
      const id = await upload(alice, heic, 'IMG_0001.HEIC', 'image/heic');
      await t.settle();
      const page = await (await alice.get(`/images/${id}`)).text();
      expect(page).toContain('900 × 600');
      expect(page).toContain('HEIC');
      expect(page).toContain('1 Jun 2024');
      const display = await fetch(attr(page, 'figure.display > img:first-child', 'src') as string);
      const shown = Buffer.from(await display.arrayBuffer());
      expect((await sharp(shown).metadata()).format).toBe('webp');
      const means = (await sharp(shown).stats()).channels.slice(0, 3).map((c) => c.mean);
      for (const [i, expected] of [30, 140, 200].entries())
        expect(Math.abs((means[i] as number) - expected)).toBeLessThan(4);
      const owner = await t.user('alice@example.com');
      const image = await t.services.images.getForUser(owner, id);
      const thumb = Buffer.from(await t.services.storage.getRange(image.thumbKey, 0, 1_000_000));
      expect((await sharp(thumb).metadata()).width).toBe(400);
      const download = await fetch(
        (await alice.get(`/images/${id}/download`)).headers.get('location') as string,
      );
      expect(download.headers.get('content-disposition')).toMatch(/filename="IMG_0001\.heic"/);
      expect(Buffer.from(await download.arrayBuffer()).equals(heic)).toBe(true);
    },
  );

  it.skipIf(!canMakeHeic)(
    'ends a damaged HEIC failed, with the reason, the original kept and no other object',
    async () => {
      const heic = await makeHeic(300, 200, { r: 200, g: 10, b: 10 });
      // The container (and so the type sniffed from the first bytes) intact, the picture cut off.
      const damaged = heic.subarray(0, Math.floor(heic.length * 0.7));
      const { done } = await uploadWithJs(alice, damaged, 'broken.heic', 'image/heic');
      expect(done.status).toBe(200);
      const { imageId } = (await done.json()) as { imageId: string };
      await t.settle();
      const page = await (await alice.get(`/images/${imageId}`)).text();
      expect(text(page, 'figure.display [role=alert] .error')).toContain('could not be read as an image');
      expect(attrs(page, 'form', 'action')).toContain(`/images/${imageId}/retry`);
      const owner = await t.user('alice@example.com');
      const image = await t.services.images.getForUser(owner, imageId);
      expect(image.state).toBe('failed');
      // The original stays (download, retry, replace); no thumbnail or display copy exists.
      expect(await t.services.storage.head(image.originalKey)).not.toBeNull();
      expect(await t.services.storage.head(image.thumbKey)).toBeNull();
      expect(await t.services.storage.head(image.displayKey)).toBeNull();
      expect(await t.count('jobs', `image_id = '${imageId}'`)).toBe(0);
      // The gallery card says so.
      const gallery = await (await alice.get('/')).text();
      expect(text(gallery, `#image-${imageId} .pending`)).toBe('Could not be processed');
      await alice.post(`/images/${imageId}/delete`, {});
    },
  );

  it('keeps a GIF moving in its display copy, with its first frame as the thumbnail', async () => {
    const owner = await t.user('alice@example.com');
    const gif = await makeAnimatedGif(500, 300, [
      [220, 40, 40],
      [40, 220, 40],
      [40, 40, 220],
    ]);
    expect((await sharp(gif).metadata()).pages).toBe(3);
    const gifId = await upload(alice, gif, 'wave.gif', 'image/gif');
    await t.settle();
    const moving = await t.services.images.getForUser(owner, gifId);
    expect([moving.width, moving.height]).toEqual([500, 300]);
    const display = Buffer.from(await t.services.storage.getRange(moving.displayKey, 0, 10_000_000));
    expect(await sharp(display).metadata()).toMatchObject({ format: 'webp', pages: 3, width: 500 });
    const thumb = Buffer.from(await t.services.storage.getRange(moving.thumbKey, 0, 10_000_000));
    expect((await sharp(thumb).metadata()).pages ?? 1).toBe(1);
    const [red, green] = (await sharp(thumb).stats()).channels.map((c) => c.mean);
    expect(red).toBeGreaterThan(200);
    expect(green).toBeLessThan(60);
  });

  it('takes a TIFF, though its first bytes do not tell it from other TIFF-based files', async () => {
    // sharp writes the image directory at the end, where file-type looks to tell a TIFF from a raw.
    const tiff = await sharp({ create: { width: 700, height: 400, channels: 3, background: '#2060a0' } })
      .tiff()
      .toBuffer();
    const id = await upload(alice, tiff, 'scan.tif', 'image/tiff');
    await t.settle();
    const page = await (await alice.get(`/images/${id}`)).text();
    expect(page).toContain('700 × 400');
    expect(page).toContain('TIFF');
    const download = await fetch(
      (await alice.get(`/images/${id}/download`)).headers.get('location') as string,
    );
    expect(Buffer.from(await download.arrayBuffer()).equals(tiff)).toBe(true);
  });

  it('keeps the colours of a 16-bit PNG and the transparency of one with alpha in both copies', async () => {
    const owner = await t.user('alice@example.com');
    const cases = [
      {
        name: 'deep.png',
        file: await sharp({
          create: { width: 800, height: 500, channels: 3, background: { r: 200, g: 30, b: 60 } },
        })
          .toColourspace('rgb16')
          .png()
          .toBuffer(),
        means: [200, 30, 60],
      },
      {
        name: 'glass.png',
        file: await sharp({
          create: { width: 800, height: 500, channels: 4, background: { r: 10, g: 200, b: 60, alpha: 0.5 } },
        })
          .png()
          .toBuffer(),
        means: [10, 200, 60, 128],
      },
    ];
    expect((await sharp(cases[0]?.file).metadata()).depth).toBe('ushort');
    for (const { name, file, means } of cases) {
      const pngId = await upload(alice, file, name, 'image/png');
      await t.settle();
      const image = await t.services.images.getForUser(owner, pngId);
      expect([image.width, image.height], name).toEqual([800, 500]);
      for (const [key, width] of [
        [image.displayKey, 800],
        [image.thumbKey, 400],
      ] as const) {
        const copy = Buffer.from(await t.services.storage.getRange(key, 0, 10_000_000));
        expect((await sharp(copy).metadata()).width, `${name} ${key}`).toBe(width);
        const stats = await sharp(copy).stats();
        const found = stats.channels.map((c) => c.mean);
        expect(found, `${name} ${key}`).toHaveLength(means.length);
        for (const [i, mean] of found.entries())
          expect(Math.abs(mean - (means[i] as number)), `${name} ${key}`).toBeLessThan(3);
      }
    }
  });

  it('uploads a PNG through the plain form with JavaScript off, and completing twice is harmless', async () => {
    const png = await makePng();
    const location = await uploadWithoutJs(alice, png);
    const complete = await alice.get(location.pathname + location.search);
    expect(complete.status).toBe(303);
    const imagePath = complete.headers.get('location') ?? '';
    expect(imagePath).toMatch(/^\/images\/[a-z0-9]+\?uploaded=1$/);
    const again = await alice.get(location.pathname + location.search);
    expect(again.headers.get('location')).toBe(imagePath);
    const page = await (await alice.get(imagePath)).text();
    expect(page).toContain('PNG');
    // The bucket put the file's name in its key; the title is the name without its extension.
    expect(page).toContain('<h1>from-a-form</h1>');
    expect(page).toContain('<dd>from-a-form.jpg</dd>');
    // Copied into place before the answer: the ETag the original has there is recorded with it.
    const id = imagePath.match(/^\/images\/([a-z0-9]+)/)?.[1] as string;
    const row = await t.services.database.q
      .selectFrom('images')
      .select(['original_key', 'original_etag'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const head = await t.services.storage.head(row.original_key);
    expect(row.original_etag).toBe(head?.etag?.replaceAll('"', ''));
  });

  it('keeps any file name a plain form sends, as text: quotes, markup, line breaks, other scripts, great length', async () => {
    const png = await makePng();
    const names = [
      // No file name holds a slash; the bucket keeps what follows the last \\ (as S3 does).
      [
        '<img src=x onerror=alert(1)> "quoted" & \'single\'.png',
        '&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &amp; &#39;single&#39;',
      ],
      ['two\nlines.png', 'two lines'],
      ['Ünïcödé 写真 📷.png', 'Ünïcödé 写真 📷'],
      [`${'a'.repeat(300)}.png`, 'a'.repeat(200)],
      ['C:\\Users\\me\\holiday.png', 'holiday'],
    ];
    for (const [name, title] of names) {
      const location = await uploadWithoutJs(alice, png, '/upload', name);
      // The redirect names the object under the upload's own prefix, by the name the bucket kept.
      expect(location.searchParams.get('key')).toMatch(/^users\/[a-z0-9]+\/uploads\/[0-9a-f-]{36}\/[^/]+$/);
      const complete = await alice.get(location.pathname + location.search);
      expect(complete.status, name).toBe(303);
      const page = await (await alice.get(complete.headers.get('location') ?? '')).text();
      expect(page, name).toContain(`<h1>${title}</h1>`);
      expect(page, name).not.toContain('<img src=x');
    }
  });

  for (const [label, bytes, type] of [
    ['an SVG', SVG, 'image/svg+xml'],
    ['an HTML page', HTML, 'image/png'],
    ['a renamed text file', TEXT_AS_PNG, 'image/png'],
  ] as const) {
    it(`refuses ${label}, deletes the object and records nothing`, async () => {
      await t.settle();
      const before = await t.count('images');
      const aliceId = (await t.user('alice@example.com')).id;
      const objectsBefore = (await t.services.storage.list(`users/${aliceId}/`)).keys.length;
      const { policy, done } = await uploadWithJs(alice, bytes, 'evil.png', type);
      expect(done.status).toBe(415);
      expect(((await done.json()) as { error: string }).error).toContain(
        'not a JPEG, PNG, GIF, WebP, AVIF, TIFF, HEIC or HEIF',
      );
      expect(await t.services.storage.head(policy.key)).toBeNull();
      // Neither the staging object nor the copy completion verified is left anywhere.
      expect((await t.services.storage.list(`users/${aliceId}/`)).keys).toHaveLength(objectsBefore);
      expect(await t.count('images')).toBe(before);
      // The row stays, closed and without an image, until its policy expires and the sweep removes it.
      expect(await t.count('pending_uploads', `key = '${policy.key}' AND closed_at IS NULL`)).toBe(0);
      expect(await t.count('pending_uploads', `key = '${policy.key}' AND image_id IS NOT NULL`)).toBe(0);
      const again = await alice.postJson('/uploads/complete', { key: policy.key });
      expect(again.status).toBe(404);
    });
  }

  it('shows a hostile file name as text', async () => {
    const id = await upload(alice, await makePng(), '<img src=x onerror=alert(1)>.png');
    const page = await (await alice.get(`/images/${id}`)).text();
    expect(page).not.toContain('<img src=x onerror=alert(1)>');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    const gallery = await (await alice.get('/')).text();
    expect(gallery).not.toContain('<img src=x');
  });

  it("answers 404 to other users on every action on someone else's image", async () => {
    const id = await upload(alice, await makePng(), 'private.png');
    const { policy } = await uploadWithJs(alice, await makePng(), 'pending.png', 'image/png');
    for (const intruder of [bob, viewer]) {
      expect((await intruder.get(`/images/${id}`)).status).toBe(404);
      expect((await intruder.get(`/images/${id}/download`)).status).toBe(404);
      expect((await intruder.post(`/images/${id}/rename`, { title: 'mine now' })).status).toBe(404);
      expect((await intruder.post(`/images/${id}/delete`)).status).toBe(404);
      expect((await intruder.get(`/images/${id}/delete`)).status).toBe(404);
      expect((await intruder.get(`/images/${id}/replace`)).status).toBe(404);
      expect((await intruder.postJson('/uploads/complete', { key: policy.key })).status).toBe(404);
    }
    expect((await bob.post('/images/delete', { ids: id, confirm: 'yes' })).status).toBe(404);
    const stolen = await bob.postJson('/uploads/complete', { key: policy.key });
    expect(stolen.status).toBe(404);
    expect((await bob.get(`/uploads/complete?key=${encodeURIComponent(policy.key)}`)).status).toBe(404);
    expect((await bob.postJson('/uploads/presign', { replaces: id })).status).toBe(404);
    expect((await t.services.images.getForUser(await t.user('alice@example.com'), id)).title).toBe('private');
    // Still completable by its owner afterwards.
    expect((await alice.postJson('/uploads/complete', { key: policy.key })).status).toBe(200);
  });

  it('refuses changes by a member demoted to viewer, even to their own images', async () => {
    const carol = await signUpWithRole(t, admin, 'carol@example.com', 'member');
    const id = await upload(carol, await makePng(), 'mine.png');
    await t.services.users.setRole((await t.user('carol@example.com')).id, 'viewer');
    expect((await carol.get(`/images/${id}`)).status).toBe(200);
    expect((await carol.post(`/images/${id}/rename`, { title: 'x' })).status).toBe(403);
    expect((await carol.post(`/images/${id}/delete`)).status).toBe(403);
    expect((await carol.get(`/images/${id}/replace`)).status).toBe(403);
    expect((await t.services.images.getForUser(await t.user('carol@example.com'), id)).title).toBe('mine');
  });

  it('refuses uploads from viewers and logged-out visitors', async () => {
    expect((await viewer.get('/upload')).status).toBe(403);
    expect((await viewer.postJson('/uploads/presign', { name: 'a.png' })).status).toBe(403);
    expect((await t.client().get('/upload')).status).toBe(303);
  });

  it('renames, replaces (same id and title, old objects gone) and deletes an image', async () => {
    const id = await upload(alice, await makeJpeg(800, 600), 'first.jpg');
    const card = (html: string) => markup(html, `#image-${id}`);
    expect(card(await (await alice.get('/')).text())).toContain('first');
    // Renamed from the page opened from the timeline: back on that page, in that order, saying so.
    const rename = await alice.post(`/images/${id}/rename?order=taken`, { title: '  Sunset over the bay  ' });
    expect(rename.status).toBe(303);
    expect(rename.headers.get('location')).toBe(`/images/${id}?order=taken&renamed=1`);
    const renamedPage = await (await alice.get(rename.headers.get('location') as string)).text();
    expect(renamedPage).toContain('Renamed.');
    expect(renamedPage).toContain(`action="/images/${id}/rename?order=taken"`);
    // The gallery renders each card once and reuses it: a rename must still show at once.
    const renamed = card(await (await alice.get('/')).text());
    expect(renamed).toContain('Sunset over the bay');
    expect(renamed).not.toContain('first');
    const before = await t.services.images.getForUser(await t.user('alice@example.com'), id);
    expect(before.title).toBe('Sunset over the bay');
    expect((await alice.post(`/images/${id}/rename`, { title: '   ' })).status).toBe(400);

    const { done } = await uploadWithJs(alice, await makePng(320, 240), 'second.png', 'image/png', id);
    expect(((await done.json()) as { imageId: string; replaced: boolean }).replaced).toBe(true);
    await t.settle();
    const after = await t.services.images.getForUser(await t.user('alice@example.com'), id);
    expect(after.id).toBe(id);
    expect(after.title).toBe('Sunset over the bay');
    expect([after.width, after.height, after.contentType]).toEqual([320, 240, 'image/png']);
    for (const key of [before.originalKey, before.displayKey, before.thumbKey]) {
      expect(await t.services.storage.head(key)).toBeNull();
    }

    const confirm = await alice.get(`/images/${id}/delete`);
    expect(await confirm.text()).toContain('It goes to the trash');
    await deleteForGood(alice, id);
    // The notices state only a count a change could have made.
    for (const forged of ['1e400', '-3', '0x10', '99999']) {
      expect(await (await alice.get(`/?restored=${forged}`)).text(), forged).not.toContain('Restored');
      expect(await (await alice.get(`/?trashed=${forged}&at=1&owner=x`)).text(), forged).not.toContain(
        'Moved',
      );
    }
    expect((await alice.get(`/images/${id}`)).status).toBe(404);
    for (const key of [after.originalKey, after.displayKey, after.thumbKey]) {
      expect(await t.services.storage.head(key)).toBeNull();
    }
  });

  it('deletes a card in place for htmx, and several images after a confirmation page', async () => {
    const one = await upload(alice, await makePng(), 'one.png');
    const htmx = await alice.post(`/images/${one}/delete`, {}, { 'HX-Request': 'true' });
    expect(htmx.status).toBe(200);
    expect(text(await htmx.text(), `#image-${one} p`)).toBe('“one” is in the trash.');

    const a = await upload(alice, await makePng(), 'a.png');
    const b = await upload(alice, await makePng(), 'b.png');
    const ask = await alice.postForm('/images/delete', [
      ['ids', a],
      ['ids', b],
    ]);
    expect(ask.status).toBe(200);
    expect(await ask.text()).toContain('Delete 2 images?');
    expect(await t.services.images.getForUser(await t.user('alice@example.com'), a)).toBeTruthy();
    const go = await alice.postForm('/images/delete', [
      ['ids', a],
      ['ids', b],
      ['confirm', 'yes'],
    ]);
    expect(go.headers.get('location')).toMatch(/^\/\?trashed=2&at=\d+&owner=/);
    const gallery = await (await alice.get('/')).text();
    expect(all(gallery, `#image-${a}, #image-${b}`)).toHaveLength(0);
    // In the trash only its owner (and admins) find them.
    expect((await bob.get(`/images/${a}`)).status).toBe(404);
  });

  it('lets an admin open any gallery and image, and nobody else', async () => {
    const id = await upload(bob, await makePng(), 'bobs.png');
    const bobId = (await t.user('bob@example.com')).id;
    const gallery = await admin.get(`/users/${bobId}`);
    expect(gallery.status).toBe(200);
    expect(await gallery.text()).toContain('Gallery of bob@example.com');
    expect((await admin.get(`/images/${id}`)).status).toBe(200);
    expect((await alice.get(`/users/${bobId}`)).status).toBe(403);
  });
});

describe('gallery pages', () => {
  let t: TestApp;
  let client: Client;
  beforeAll(async () => {
    t = await makeTestApp();
    client = t.client();
    await signUp(client, 'many@example.com');
    await t.seedImages((await t.user('many@example.com')).id, 150);
  });
  afterAll(() => t.close());

  it('returns each of 150 images exactly once, newest first, 60 a page, without JavaScript', async () => {
    const seen: string[] = [];
    let path: string | null = '/';
    let pages = 0;
    while (path) {
      const html = await (await client.get(path)).text();
      const ids = attrs(html, '[id^="image-"]', 'id').map((id) => id.slice('image-'.length));
      seen.push(...ids);
      pages++;
      path = attr(html, 'a.button[href^="/?cursor="]', 'href') ?? null;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(150);
    expect(new Set(seen).size).toBe(150);
    expect(seen).toEqual(await t.imageIdsNewestFirst((await t.user('many@example.com')).id));
  });

  it('appends the next page for htmx with the "Load more" link swapped out of band', async () => {
    const first = await (await client.get('/')).text();
    const next = attr(first, '[hx-get^="/?cursor="]', 'hx-get');
    const res = await client.get(next as string, { 'HX-Request': 'true' });
    const fragment = await res.text();
    expect(fragment).not.toContain('<html');
    expect(all(fragment, 'li.thumb')).toHaveLength(60);
    expect(attr(fragment, 'div#load-more.load-more', 'hx-swap-oob')).toBe('true');
  });

  it('shows no delete controls to a viewer, on the first page or in pages htmx appends', async () => {
    const manyId = (await t.user('many@example.com')).id;
    await t.services.users.setRole(manyId, 'viewer');
    try {
      const first = await (await client.get('/')).text();
      expect(first).not.toContain('name="ids"');
      expect(first).not.toContain('Delete');
      const next = attr(first, '[hx-get^="/?cursor="]', 'hx-get');
      const fragment = await (await client.get(next as string, { 'HX-Request': 'true' })).text();
      expect(all(fragment, 'li.thumb')).toHaveLength(60);
      expect(fragment).not.toContain('name="ids"');
      expect(fragment).not.toContain('hx-post');
    } finally {
      await t.services.users.setRole(manyId, 'admin');
    }
  });

  it('gives the same thumbnail URL within the hour, so browsers cache it', async () => {
    const a = attr(await (await client.get('/')).text(), 'img', 'src');
    t.advance(60 * 1000);
    const b = attr(await (await client.get('/')).text(), 'img', 'src');
    expect(a).toBeTruthy();
    expect(a).toBe(b);
  });

  it('answers a forged cursor with 400, not a crash', async () => {
    for (const cursor of ['%00', 'abc', Buffer.from('-5.x').toString('base64url'), 'A'.repeat(5000)]) {
      const res = await client.get(`/?cursor=${cursor}`);
      expect(res.status, cursor).toBe(400);
    }
  });
});

describe('reconcile', () => {
  let t: TestApp;
  let client: Client;
  beforeAll(async () => {
    t = await makeTestApp();
    client = t.client();
    await signUp(client, 'owner@example.com');
  });
  afterAll(() => t.close());

  it('completes uploads whose browser never came back, imports outside uploads and drops orphans', async () => {
    const userId = (await t.user('owner@example.com')).id;
    const { policy } = await uploadWithJs(client, await makePng(), 'kept.png', 'image/png');
    // That one was completed; this one reaches the bucket but its browser never confirms it.
    const presign = await client.postJson('/uploads/presign', { name: 'left-behind.png' });
    const pending = (await presign.json()) as Policy;
    expect((await postToBucket(pending, await makePng(), 'image/png', 'left-behind.png')).status).toBe(201);
    const expiredPolicy = (await (
      await client.postJson('/uploads/presign', { name: 'never.png' })
    ).json()) as Policy;
    await t.services.storage.put(`users/${userId}/originals/from-the-cli.png`, await makePng(), 'image/png');
    await t.services.storage.put(`users/${userId}/thumbs/stray.webp`, Buffer.from('x'), 'image/webp');
    await untilOriginalsStored(t);
    t.advance(2 * 60 * 60 * 1000);

    const dry = await t.services.reconcile.run({ apply: false });
    expect(dry.completed).toEqual([pending.key]);
    expect(dry.expired).toEqual([expiredPolicy.key]);
    expect(dry.imported).toEqual([`users/${userId}/originals/from-the-cli.png`]);
    // Two unfinished, and the finished one kept until its policy has expired.
    expect(await t.count('pending_uploads', 'closed_at IS NULL')).toBe(2);
    expect(await t.count('pending_uploads')).toBe(3);

    const report = await t.services.reconcile.run({ apply: true });
    expect(report.completed).toEqual([pending.key]);
    expect(report.imported).toEqual([`users/${userId}/originals/from-the-cli.png`]);
    expect(report.orphansDeleted).toContain(`users/${userId}/thumbs/stray.webp`);
    expect(await t.count('pending_uploads')).toBe(0);
    await untilOriginalsStored(t); // the imported object goes once copied into place
    expect(await t.count('images')).toBe(3);
    expect(await t.services.storage.head(`users/${userId}/thumbs/stray.webp`)).toBeNull();
    expect(await t.services.storage.head(`users/${userId}/originals/from-the-cli.png`)).toBeNull();
    // Every image's objects are in the bucket, and nothing else is.
    const rows = await expectBucketMatchesRows(t.services, userId);
    expect(rows.map((r) => r.original_key)).not.toContain(policy.key);

    const again = await t.services.reconcile.run({ apply: true });
    expect([...again.completed, ...again.imported, ...again.orphansDeleted, ...again.expired]).toEqual([]);
  });

  it('retries deletes that failed in the bucket', async () => {
    await t.services.database.q
      .insertInto('storage_deletions')
      .values({ key: 'users/zzz/originals/gone', queued_at: 1 })
      .execute();
    await t.services.storage.put('users/zzz/originals/gone', Buffer.from('x'), 'image/png');
    const report = await t.services.reconcile.run({ apply: true });
    expect(report.retriedDeletes).toContain('users/zzz/originals/gone');
    expect(await t.services.storage.head('users/zzz/originals/gone')).toBeNull();
    expect(await t.count('storage_deletions')).toBe(0);
  });
});
