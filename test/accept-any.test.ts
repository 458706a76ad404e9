import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, attrs, count, hiddenForm, text, texts } from './support/html.js';
import { makeJpeg } from './support/images.js';
import { shownLink } from './support/share-links.js';
import { makeInterceptedApp } from './support/store-interceptor.js';
import {
  expectBucketMatchesRows,
  type Policy,
  postToBucket,
  upload,
  uploadWithJs,
} from './support/uploads.js';

/** A small PDF: its first bytes say what it is. */
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
/** A page that would run script if a browser ever rendered it from the bucket's origin. */
const HTML = Buffer.from('<!doctype html><script>document.title = "ran"</script><p>hello</p>');

/** What upload.js claims every file is with ACCEPT=any (the policy allows nothing else). */
const BYTES = 'application/octet-stream';

/** Follows a download's redirect to the bucket, as a browser does. */
async function download(client: Client, path: string) {
  const res = await client.get(path);
  expect(res.status).toBe(303);
  return fetch(res.headers.get('location') as string);
}

describe('ACCEPT=any: other files are kept as files', () => {
  let t: TestApp;
  let alice: Client;
  let aliceId: string;

  beforeAll(async () => {
    t = await makeTestApp({ env: { ACCEPT: 'any' } });
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    aliceId = (await t.user('alice@example.com')).id;
  });
  afterAll(() => t.close());

  it('keeps a PDF and an HTML page with their sniffed types, as file cards with no copies', async () => {
    const pdf = await upload(alice, PDF, 'Tax return 2026.pdf', BYTES);
    const page = await upload(alice, HTML, 'notes.html', BYTES);
    const photo = await upload(alice, await makeJpeg(300, 200), 'photo.jpg', BYTES);
    await t.settle();
    const rows = await t.services.database.q
      .selectFrom('images')
      .select(['id', 'content_type', 'state', 'title'])
      .where('owner_id', '=', aliceId)
      .execute();
    const byId = new Map(rows.map((r) => [r.id, [r.content_type, r.state, r.title]]));
    expect(byId.get(pdf)).toEqual(['application/pdf', 'ready', 'Tax return 2026']);
    // Its bytes tell no type a browser should trust: bytes it is, never text/html.
    expect(byId.get(page)).toEqual(['application/octet-stream', 'ready', 'notes']);
    expect(byId.get(photo)).toEqual(['image/jpeg', 'ready', 'photo']);
    // The files' originals only: no thumbnail, no display copy.
    await expectBucketMatchesRows(t.services, aliceId);

    const gallery = await (await alice.get('/')).text();
    expect(text(gallery, `#image-${pdf} .file-type`)).toBe('PDF');
    expect(text(gallery, `#image-${page} .file-type`)).toBe('HTML');
    expect(attr(gallery, `#image-${pdf} .file-card`, 'aria-label')).toMatch(
      /^Tax return 2026: PDF file, \d+ B$/,
    );
    // The viewer opens images; a file card leads to its page.
    expect(attrs(gallery, '[data-pswp-src]', 'data-image-id')).toEqual([photo]);
    expect(count(gallery, `#image-${pdf} img`)).toBe(0);

    const pdfPage = await (await alice.get(`/images/${pdf}`)).text();
    expect(texts(pdfPage, '.details dd').slice(0, 2)).toEqual(['Tax return 2026.pdf', 'PDF file']);
    expect(pdfPage).not.toContain('Dimensions');
    expect(text(pdfPage, `a[href="/images/${pdf}/download"]`)).toBe('Download');
    expect(count(pdfPage, 'figure.display img')).toBe(0);
  });

  it('lets no upload claim a type a browser would render: the policy takes bytes only', async () => {
    const res = await alice.postJson('/uploads/presign', { name: 'page.html', size: HTML.length });
    const policy = (await res.json()) as Policy;
    const claimed = await postToBucket(policy, HTML, 'text/html', 'page.html');
    expect(claimed.status).toBe(403);
    expect(await claimed.text()).toContain('Policy Condition failed');
  });

  it('serves a file only as a download: attachment under its own name, nosniff, a sandbox', async () => {
    const pdf = await upload(alice, PDF, 'report.pdf', BYTES);
    const page = await upload(alice, HTML, 'page.html', BYTES);
    await t.settle();
    const asPdf = await download(alice, `/images/${pdf}/download`);
    expect(asPdf.status).toBe(200);
    expect(asPdf.headers.get('content-type')).toBe('application/pdf');
    expect(asPdf.headers.get('content-disposition')).toContain('attachment; filename="report.pdf"');
    expect(Buffer.from(await asPdf.arrayBuffer()).equals(PDF)).toBe(true);
    const asHtml = await download(alice, `/images/${page}/download`);
    expect(asHtml.headers.get('content-type')).toBe('application/octet-stream');
    expect(asHtml.headers.get('content-disposition')).toContain('attachment; filename="page.html"');
    expect(asHtml.headers.get('x-content-type-options')).toBe('nosniff');
    expect(asHtml.headers.get('content-security-policy')).toContain('sandbox');
  });

  it('keeps a plain form’s file by its name, and an empty file is refused', async () => {
    const html = await (await alice.get('/upload')).text();
    expect(text(html, 'h1')).toBe('Upload files');
    expect(attr(html, '#file', 'accept')).toBeUndefined();
    expect(text(html, 'label[for="file"]')).toBe('Choose a file');
    const { action, fields } = hiddenForm(html, '#upload-form');
    const post = async (bytes: Buffer, name: string) => {
      const form = new FormData();
      for (const [k, v] of fields) form.append(k, v);
      form.append('file', new Blob([new Uint8Array(bytes)]), name);
      return fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
    };
    const stored = await post(Buffer.from('plain words\n'), 'shopping list.txt');
    expect(stored.status).toBe(303);
    const back = new URL(stored.headers.get('location') as string);
    const done = await alice.get(back.pathname + back.search);
    expect(done.status).toBe(303);
    const pagePath = (done.headers.get('location') as string).split('?')[0] as string;
    const page = await (await alice.get(pagePath)).text();
    expect(text(page, 'h1')).toBe('shopping list');
    expect(texts(page, '.details dd').slice(0, 2)).toEqual(['shopping list.txt', 'TXT file']);

    // An empty file: upload.js is told before it sends anything; the plain form's bucket refuses it.
    const empty = await alice.postJson('/uploads/presign', { name: 'empty.txt', size: 0 });
    expect(empty.status).toBe(400);
    const none = await post(Buffer.alloc(0), 'empty.txt');
    expect(none.status).toBe(400);
  });

  it('renames, trashes, restores and shares a file; a link gives it only when it gives originals', async () => {
    const pdf = await upload(alice, PDF, 'lease.pdf', BYTES);
    await t.settle();
    expect((await alice.post(`/images/${pdf}/rename`, { title: 'Flat lease' })).status).toBe(303);
    expect((await alice.post(`/images/${pdf}/delete`)).status).toBe(303);
    expect(await (await alice.get('/')).text()).not.toContain(`image-${pdf}`);
    expect(await (await alice.get('/trash')).text()).toContain('Flat lease');
    expect((await alice.post(`/images/${pdf}/restore`)).status).toBe(303);

    const asCopy = await shownLink(
      alice,
      await alice.post(`/images/${pdf}/shares`, { expiry: '1d', download: 'copy' }),
    );
    const visitor = t.client();
    const copyPage = await (await visitor.get(asCopy)).text();
    expect(text(copyPage, '.file-type')).toBe('PDF');
    // No copy without its metadata can be made of a file: nothing to download on such a link.
    expect(copyPage).not.toContain('Download');
    expect((await visitor.get(`${asCopy}/download/${pdf}`)).status).toBe(404);

    const asOriginal = await shownLink(
      alice,
      await alice.post(`/images/${pdf}/shares`, { expiry: '1d', download: 'original' }),
    );
    const originalPage = await (await visitor.get(asOriginal)).text();
    const href = attr(originalPage, 'figcaption a.button', 'href') as string;
    const file = await fetch(href);
    expect(file.headers.get('content-disposition')).toContain('attachment');
    expect(Buffer.from(await file.arrayBuffer()).equals(PDF)).toBe(true);
  });

  it('never makes a file an album’s cover', async () => {
    const made = await alice.post('/albums', { name: 'Papers' });
    const albumPath = (made.headers.get('location') as string).split('?')[0] as string;
    const albumId = albumPath.split('/').pop() as string;
    const pdf = await upload(alice, PDF, 'a.pdf', BYTES);
    await t.settle();
    expect((await alice.post(`/albums/${albumId}/images`, { ids: pdf })).status).toBe(303);
    const asCover = await alice.post(`/albums/${albumId}/cover`, { ids: pdf });
    expect(asCover.status).toBe(400);
    expect(await asCover.text()).toContain('A file has no picture to be a cover');
    const albums = await (await alice.get('/albums')).text();
    expect(count(albums, `a[href="/albums/${albumId}"] img`)).toBe(0);
    const photo = await upload(alice, await makeJpeg(200, 200), 'cover.jpg', BYTES);
    await t.settle();
    expect((await alice.post(`/albums/${albumId}/images`, { ids: photo })).status).toBe(303);
    const later = await (await alice.get('/albums')).text();
    expect(count(later, `a[href="/albums/${albumId}"] img`)).toBe(1);
  });
});

describe('ACCEPT=images (the default)', () => {
  let t: TestApp;
  let alice: Client;

  beforeAll(async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
  });
  afterAll(() => t.close());

  it('refuses a PDF, whatever type it is sent as, and the page asks for images', async () => {
    const html = await (await alice.get('/upload')).text();
    expect(text(html, 'h1')).toBe('Upload images');
    expect(attr(html, '#file', 'accept')).toContain('image/jpeg');
    const { done } = await uploadWithJs(alice, PDF, 'x.pdf', 'image/jpeg');
    expect(done.status).toBe(415);
    expect(await t.count('images')).toBe(0);
  });
});

describe('ACCEPT=any on a bucket whose copies get ETags of their own (SSE-KMS)', () => {
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof makeInterceptedApp>>['proxy'];
  let alice: Client;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ t, proxy, client: alice, close } = await makeInterceptedApp('alice@example.com', { ACCEPT: 'any' }));
    // Every copy answers another ETag than its source's: the original is checked by what it holds.
    proxy.onRequest((req) =>
      req.headers['x-amz-copy-source']
        ? {
            rewrite: (body) =>
              body.replace(
                /<ETag>[^<]*<\/ETag>/,
                '<ETag>&quot;0f0e0d0c0b0a09080706050403020100&quot;</ETag>',
              ),
          }
        : undefined,
    );
  });
  afterAll(() => close());

  it('keeps a PDF and a file of unknown type: their copies are checked as files, not as images', async () => {
    const pdf = await upload(alice, PDF, 'kms.pdf', BYTES);
    const text = await upload(alice, Buffer.from('just words\n'), 'kms.txt', BYTES);
    await t.settle();
    const states = await t.services.database.q
      .selectFrom('images')
      .select(['id', 'state', 'failure'])
      .where('id', 'in', [pdf, text])
      .execute();
    expect(states.map((r) => [r.state, r.failure])).toEqual([
      ['ready', null],
      ['ready', null],
    ]);
    expect(
      Buffer.from(await (await download(alice, `/images/${pdf}/download`)).arrayBuffer()).equals(PDF),
    ).toBe(true);
  });
});
