import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeTestApp, PASSWORD, signUp, type TestApp } from './support/app.js';
import { fieldValue } from './support/html.js';

/**
 * Values a phisher puts in `next` / `back`, as the route sees them once the query or form is decoded.
 * A browser drops tabs and newlines from a URL and reads "\" as "/", so most of these are other hosts.
 */
const attacks = [
  '/\t/127.0.0.1:3999/phish', // the issue's /%09/127.0.0.1:3999/phish
  '/\n/127.0.0.1:3999/phish',
  '/\r\n/evil.example',
  '/\r/evil.example',
  '\t//evil.example',
  ' //evil.example',
  '\u0000//evil.example',
  '/\u0000/evil.example',
  '/\u001f/evil.example',
  '/\u007f/evil.example',
  '//evil.example',
  '///evil.example',
  '////evil.example/x',
  '/\\evil.example',
  '\\/evil.example',
  '\\\\evil.example',
  '/\\/evil.example',
  '/\t\\evil.example',
  '/.//evil.example',
  '/..//evil.example',
  '/./\\evil.example',
  'https://evil.example',
  'http://evil.example/',
  'HTTP://EVIL.EXAMPLE',
  'https:evil.example',
  'https:/evil.example',
  'ftp://evil.example/',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  ' javascript:alert(1)',
  'java\tscript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'mailto:someone@evil.example',
  '//evil.example@127.0.0.1',
  'http://127.0.0.1@evil.example/',
  'http://evil.example\\@127.0.0.1/',
  'http://user:pass@evil.example/',
  '/%09/evil.example',
  '/%2F/evil.example',
  '/%5C/evil.example',
  '%2F%2Fevil.example',
  '/\u2028/evil.example',
  '/\ufeff/evil.example',
  '/\uff0f\uff0fevil.example',
  `/${'a'.repeat(10_000)}`,
  `//${'a'.repeat(100_000)}.example`,
  '',
  ' ',
  '?',
  '#',
];

/** Where a browser goes with this Location: it must be our origin, reached by a plain path. */
function expectSameOrigin(location: string | null, appOrigin: string, what: string) {
  expect(location, what).toBeTruthy();
  const target = location as string;
  expect(target, what).toMatch(/^\/(?![/\\])/);
  expect(target, what).toMatch(/^[\x21-\x7e]*$/);
  expect(new URL(target, appOrigin).origin, what).toBe(appOrigin);
}

describe('redirect targets from the request', () => {
  let t: TestApp;
  let admin: Client;
  let origin: string;

  beforeAll(async () => {
    t = await makeTestApp();
    origin = t.config.appOrigin;
    admin = t.client();
    await signUp(admin, 'admin@example.com');
  });
  afterAll(() => t.close());

  it('sends a signed-in visitor of /login only to a path on our origin, never a 500', async () => {
    for (const value of attacks) {
      const what = `next=${JSON.stringify(value.slice(0, 60))}`;
      const res = await admin.get(`/login?next=${encodeURIComponent(value)}`);
      expect(res.status, what).toBe(303);
      expectSameOrigin(res.headers.get('location'), origin, what);
    }
  });

  it('sends a fresh login only to a path on our origin, never a 500', async () => {
    for (const value of attacks) {
      const what = `next=${JSON.stringify(value.slice(0, 60))}`;
      const res = await t
        .client()
        .post('/login', { email: 'admin@example.com', password: PASSWORD, next: value });
      expect(res.status, what).toBe(303);
      expectSameOrigin(res.headers.get('location'), origin, what);
    }
  });

  it('returns from revoking a link only to a path on our origin', async () => {
    const owner = await t.user('admin@example.com');
    await t.seedImages(owner.id, 1);
    const imageIds = await t.imageIdsNewestFirst(owner.id);
    for (const value of attacks) {
      const what = `back=${JSON.stringify(value.slice(0, 60))}`;
      const link = (
        await t.services.shares.create({ user: owner, ip: 'test' }, imageIds, {
          expiry: '1d',
          allowDownload: false,
        })
      ).link;
      const res = await admin.post(`/shares/${link.id}/revoke`, { back: value });
      expect(res.status, what).toBe(303);
      expectSameOrigin(res.headers.get('location'), origin, what);
    }
  });

  it('keeps a path of our own, with its query and fragment, as it was', async () => {
    for (const value of [
      '/images/abc?revoked=1#links',
      '/admin/audit?email=a%40b.example&action=login',
      '/',
    ]) {
      const res = await admin.get(`/login?next=${encodeURIComponent(value)}`);
      expect(res.headers.get('location')).toBe(value);
    }
    const absolute = await admin.get(`/login?next=${encodeURIComponent(`${origin}/shared?x=1`)}`);
    expect(absolute.headers.get('location')).toBe('/shared?x=1');
  });

  it('carries only a cleaned target in the login form, so it cannot smuggle one through a failed login', async () => {
    const page = await (
      await t.client().get(`/login?next=${encodeURIComponent('/\t/evil.example/x')}`)
    ).text();
    expect(page).not.toContain('evil.example');
    const kept = await (await t.client().get(`/login?next=${encodeURIComponent('/shared?x=1')}`)).text();
    expect(fieldValue(kept, 'next')).toBe('/shared?x=1');
    const failed = await t.client().post('/login', {
      email: 'admin@example.com',
      password: 'wrong password',
      next: '/\\evil.example',
    });
    expect(failed.status).toBe(401);
    expect(await failed.text()).not.toContain('evil.example');
  });
});
