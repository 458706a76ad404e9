import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILENAME_PLACEHOLDER, uploadKeyOf } from '../src/services/pending-uploads.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { fieldValue } from './support/html.js';
import { makePng } from './support/images.js';
import { upload } from './support/uploads.js';

/** URLs cannot carry lone surrogates: a browser sends U+FFFD instead, and so does this. */
const enc = (text: string) =>
  encodeURIComponent(
    text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  );

/** Text a hostile client might send: control characters, NULs, lone surrogates, huge, or plain. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme-composite', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '\ud800',
    '../../etc/passwd',
    '<script>x</script>',
    '%00',
    '-1',
    '1e400',
  ),
  fc.constantFrom('-1', '0', '99999999999999999999', 'MTIzNDU2.Nzg5', 'NaN', '__proto__', 'constructor'),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => 'x'.repeat(n)),
);

/** Raw bodies that are not even well-formed: bad percent-escapes, invalid UTF-8, stray separators. */
const rawBody = fc.oneof(
  fc.constantFrom(
    '%FF%FE%FD',
    'title=%E0%A4%A',
    'a=%zz&b=%',
    '&&&===',
    'ids=1&ids=2&ids=3&confirm=yes&confirm=no',
  ),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

/**
 * Redirect targets built from the pieces open-redirect tricks are made of: slashes and backslashes,
 * whitespace and control characters a browser drops, percent-encodings, schemes, userinfo, dot segments.
 */
const redirectPiece = fc.oneof(
  fc.constantFrom('/', '//', '\\', '/\\', '\\/', '.', '..', '@', ':', '?', '#', '%', '&next=/'),
  fc.constantFrom('\t', '\n', '\r', ' ', '\u0000', '\u000b', '\u000c', '\u001f', '\u007f', '\u00a0'),
  fc.constantFrom('\u2028', '\u200b', '\u202e', '\ufeff', '\uff0f', '\uff3c', '\u3002'),
  fc.constantFrom('%09', '%0a', '%0d', '%2f', '%2F', '%5c', '%5C', '%00', '%20', '%252f', '%E2%80%A8'),
  fc.constantFrom('http:', 'https:', 'javascript:', 'data:', 'HTTP:', 'ftp:', 'blob:', 'file:'),
  fc.constantFrom('evil.example', '127.0.0.1:3999', 'localhost', 'localhost:3000', '[::1]', 'xn--e1a'),
  fc.stringMatching(/^[a-z0-9.-]{1,12}$/),
  fc.string({ unit: 'binary', maxLength: 3 }),
);
const redirectTarget = fc.oneof(
  fc.array(redirectPiece, { minLength: 1, maxLength: 8 }).map((parts) => `/${parts.join('')}`),
  fc.array(redirectPiece, { minLength: 1, maxLength: 8 }).map((parts) => parts.join('')),
  fc.integer({ min: 2000, max: 20_000 }).map((n) => `/${'/'.repeat(n % 3)}${'a'.repeat(n)}`),
);

const contentType = fc.constantFrom(
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zzz',
  'multipart/form-data',
  'application/json',
  'text/plain',
  'application/xml',
);

describe('generated bad input', () => {
  let t: TestApp;
  let admin: Client;
  let mallory: Client;
  let bobImage: string;
  let bobLink: string;
  let snapshotOfBob: () => Promise<unknown>;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    const bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    mallory = await signUpWithRole(t, admin, 'mallory@example.com', 'member');
    bobImage = await upload(bob, await makePng(), 'bob.png');
    await t.settle();
    const bobUser = await t.user('bob@example.com');
    bobLink = (
      await t.services.shares.create({ user: bobUser, ip: 'test' }, [bobImage], {
        expiry: '7d',
        allowDownload: false,
      })
    ).link.id;
    const db = t.services.database;
    snapshotOfBob = async () => ({
      user: await db.q.selectFrom('users').selectAll().where('id', '=', bobUser.id).executeTakeFirst(),
      images: await db.q
        .selectFrom('images')
        .selectAll()
        .where('owner_id', '=', bobUser.id)
        .orderBy('id')
        .execute(),
      links: await db.q
        .selectFrom('share_links')
        .selectAll()
        .where('owner_id', '=', bobUser.id)
        .orderBy('id')
        .execute(),
      sessions: await t.count('sessions', `user_id = '${bobUser.id}'`),
    });
  });
  afterAll(() => t.close());

  const postPaths = [
    (id: string) => `/images/${id}/rename`,
    (id: string) => `/images/${id}/delete`,
    (id: string) => `/images/${id}/visibility`,
    (id: string) => `/images/${id}/shares`,
    (id: string) => `/shares/${id}/revoke`,
    (id: string) => `/s/${id}`,
    () => '/images/delete',
    () => '/shares/new',
    () => '/shares',
    () => '/uploads/presign',
    () => '/uploads/complete',
    (id: string) => `/u/${id}/presign`,
    (id: string) => `/u/${id}/complete`,
    (id: string) => `/u/${id}/abandon`,
    () => '/guest-links',
    (id: string) => `/guest-links/${id}/revoke`,
    () => '/login',
    () => '/signup',
    () => '/account/password',
    (id: string) => `/admin/users/${id}/role`,
    (id: string) => `/images/${id}/restore`,
    () => '/trash/restore',
    () => '/trash/delete',
    () => '/trash/empty',
    () => '/trash/undo',
  ];
  const getPaths = [
    (v: string) => `/?cursor=${enc(v)}`,
    (v: string) => `/shared?cursor=${enc(v)}`,
    (v: string) => `/images/${enc(v)}`,
    (v: string) => `/images/${enc(v)}/download`,
    (v: string) => `/images/${enc(v)}/replace`,
    (v: string) => `/uploads/complete?key=${enc(v)}`,
    (v: string) => `/s/${enc(v)}`,
    (v: string) => `/u/${enc(v)}`,
    (v: string) => `/u/${enc(v)}/complete?key=${enc(v)}&etag=${enc(v)}`,
    (v: string) => `/users/${enc(v)}`,
    (v: string) => `/login?next=${enc(v)}`,
    (v: string) => `/signup?invite=${enc(v)}`,
    (v: string) => `/s/${enc(v)}/download/${enc(v)}`,
    (v: string) => `/?trashed=${enc(v)}&at=${enc(v)}&owner=${enc(v)}`,
    (v: string) => `/users/${enc(v)}/trash`,
  ];
  const adminGets = [
    (v: string) => `/admin/audit?cursor=${enc(v)}`,
    (v: string) => `/admin/audit?from=${enc(v)}&to=${enc(v)}`,
    (v: string) => `/admin/audit?email=${enc(v)}&action=${enc(v)}`,
    (v: string) => `/admin/audit.csv?from=${enc(v)}`,
    (v: string) => `/admin/changes?cursor=${enc(v)}`,
    (v: string) => `/admin/users/${enc(v)}`,
  ];

  /** Never a 500, never a stack trace or an internal message in what the client sees. */
  async function expectHandled(res: Response, what: string) {
    expect(res.status, what).toBeLessThan(500);
    const body = await res.text();
    expect(body, what).not.toMatch(/\bat [\w.<>]+ \(|node:internal|SqliteError|TypeError|RangeError/);
  }

  it('answers every form and route with a handled status, and never touches another user’s data', async () => {
    const before = await snapshotOfBob();
    const id = fc.oneof(nasty, fc.constant(bobImage), fc.constant(bobLink), fc.constant('x'));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...postPaths),
        id,
        fc.dictionary(
          fc.constantFrom(
            'title',
            'ids',
            'confirm',
            'shared',
            'expiry',
            'password',
            'email',
            'role',
            'next',
            'key',
            'name',
            'replaces',
            'invite',
            'current',
            'allow_download',
            'download',
            'owner',
            'at',
            'back',
            'label',
            'message',
            'max_files',
            'max_mib',
            'max_file_mib',
            'formKey',
          ),
          fc.oneof(nasty, redirectTarget),
          { maxKeys: 5 },
        ),
        fc.option(rawBody),
        contentType,
        async (path, target, fields, raw, type) => {
          const p = path(enc(target));
          const body =
            raw ??
            (type === 'application/json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString());
          const res = await t.app.request(`${t.config.appOrigin}${p}`, {
            method: 'POST',
            body,
            headers: {
              'Content-Type': type,
              Origin: t.config.appOrigin,
              Cookie: mallory.cookieHeader(),
              Accept: type === 'application/json' ? 'application/json' : 'text/html',
            },
          });
          await expectHandled(res, `POST ${p} (${type})`);
        },
      ),
      { numRuns: 600 },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...getPaths), nasty, async (path, value) => {
        const res = await mallory.get(path(value));
        await expectHandled(res, `GET ${path(value)}`);
      }),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...adminGets), nasty, async (path, value) => {
        const res = await admin.get(path(value));
        await expectHandled(res, `GET ${path(value)} as admin`);
      }),
      { numRuns: 200 },
    );
    expect(await snapshotOfBob()).toEqual(before);
  });

  it('answers the routes of uploads in parts with a handled status, whatever JSON they get', async () => {
    const before = await snapshotOfBob();
    // One real upload in parts of Mallory's own, so keys that exist are tried too.
    const started = await mallory.postJson('/uploads/parts/start', { name: 'm.png', size: 9_000_000 });
    expect(started.status).toBe(200);
    const { key } = (await started.json()) as { key: string };
    const value = fc.oneof(
      fc.jsonValue(),
      nasty,
      fc.integer(),
      fc.double(),
      fc.constant(key),
      fc.constant(bobImage),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          '/uploads/parts/start',
          '/uploads/parts/url',
          '/uploads/parts/finish',
          '/uploads/abandon',
        ),
        fc.dictionary(fc.constantFrom('key', 'part', 'size', 'name', 'type', 'replaces'), value, {
          maxKeys: 4,
        }),
        async (path, body) => {
          const res = await mallory.postJson(path, body);
          await expectHandled(res, `POST ${path} ${JSON.stringify(body)}`);
        },
      ),
      { numRuns: 300 },
    );
    expect(await snapshotOfBob()).toEqual(before);
  });

  it('redirects a signed-in /login only to our own origin, whatever `next` holds', async () => {
    const origin = t.config.appOrigin;
    await fc.assert(
      fc.asyncProperty(redirectTarget, fc.boolean(), async (value, encodeTwice) => {
        // Once decoded by the query parser, or left percent-encoded as a second layer would be.
        const query = encodeTwice ? enc(enc(value)) : enc(value);
        const res = await mallory.get(`/login?next=${query}`);
        const what = `next=${JSON.stringify(value)}`;
        expect(res.status, what).toBe(303);
        const location = res.headers.get('location') ?? '';
        expect(location, what).toMatch(/^\/(?![/\\])[\x21-\x7e]*$/);
        expect(new URL(location, origin).origin, what).toBe(origin);
      }),
      { numRuns: 1500 },
    );
  });

  it('answers any name under one’s own plain-form upload with a handled status, and keeps nothing', async () => {
    const html = await (await mallory.get('/upload')).text();
    const prefix = uploadKeyOf(fieldValue(html, 'key', '#upload-form') ?? '');
    expect(prefix).toMatch(/\/uploads\/[0-9a-f-]{36}\/$/);
    const name = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }), // lone surrogates, control characters
      fc.constantFrom('..', '.', '', 'a/b', 'a\\b', '%00', 'x'.repeat(1100), FILENAME_PLACEHOLDER),
    );
    await fc.assert(
      fc.asyncProperty(name, fc.boolean(), async (n, viaRedirect) => {
        const key = `${prefix}${n}`;
        const res = viaRedirect
          ? await mallory.get(`/uploads/complete?key=${enc(key)}&etag=%22x%22`)
          : await mallory.postJson('/uploads/complete', { key, etag: '"x"' });
        // Nothing was stored there: not found, or the file "has not arrived"; never a crash or an outage.
        expect([400, 404], JSON.stringify(n)).toContain(res.status);
      }),
      { numRuns: 300 },
    );
    expect(await t.count('images', `owner_id = '${(await t.user('mallory@example.com')).id}'`)).toBe(0);
  });

  it('answers a repeated parameter, an enormous cursor and a NUL in a path without a 500', async () => {
    for (const path of [
      '/?cursor=a&cursor=b',
      `/?cursor=${'A'.repeat(100_000)}`,
      '/images/%00',
      '/images/%E0%A4%A',
      '/s/%FF%FE',
      '/admin/audit?cursor=-5',
      '/admin/audit?cursor=99999999999999999999999',
    ]) {
      const res = await admin.get(path);
      await expectHandled(res, path);
    }
  });
});
