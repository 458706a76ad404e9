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

describe('an htmx request after the session ended', () => {
  let t: TestApp;
  let origin: string;

  beforeAll(async () => {
    t = await makeTestApp();
    origin = t.config.appOrigin;
  });
  afterAll(() => t.close());

  /** Where HX-Redirect sends the whole page, and the `next` it carries (null when none). */
  function redirectOf(res: Response): { path: string; next: string | null } {
    const target = res.headers.get('HX-Redirect');
    expect(target).toBeTruthy();
    const url = new URL(target as string, origin);
    expect(url.origin).toBe(origin);
    return { path: url.pathname, next: url.searchParams.get('next') };
  }

  it('sends the whole page to the login and back, instead of swapping the login page into a part of it', async () => {
    const alice = t.client();
    await signUp(alice, 'alice@example.com');
    expect((await alice.get('/', { 'HX-Request': 'true' })).status).toBe(200);
    expect((await alice.post('/logout')).status).toBe(303);

    // The next page of the grid, asked for from a filtered gallery.
    const more = await alice.get('/?after=x', {
      'HX-Request': 'true',
      'HX-Current-URL': `${origin}/?order=taken`,
    });
    expect(more.status).toBe(401);
    expect(await more.text()).toBe('');
    expect(redirectOf(more)).toEqual({ path: '/login', next: '/?order=taken' });

    // A state change (Delete on a card) is refused the same way, and changes nothing.
    const deleted = await alice.post(
      '/images/someone/delete',
      {},
      {
        'HX-Request': 'true',
        'HX-Current-URL': `${origin}/albums/a1`,
      },
    );
    expect(deleted.status).toBe(401);
    expect(redirectOf(deleted)).toEqual({ path: '/login', next: '/albums/a1' });

    // Without htmx, as before: a redirect to the login page, which comes back to the page asked for.
    const plain = await alice.get('/shared');
    expect(plain.status).toBe(303);
    expect(plain.headers.get('location')).toBe('/login?next=%2Fshared');
  });

  it('names a page of our own origin as the one to come back to, whatever the request says', async () => {
    const visitor = t.client();
    for (const value of [...attacks, `${origin}\t/x`, 'https://evil.example/?next=/x']) {
      const what = `HX-Current-URL=${JSON.stringify(value.slice(0, 60))}`;
      // A header carries bytes, and no line break: values a request cannot hold are left out.
      if (/[\0\r\n]|[^\0-\xff]/.test(value)) continue;
      const res = await visitor.get('/', { 'HX-Request': 'true', 'HX-Current-URL': value });
      expect(res.status, what).toBe(401);
      const { path, next } = redirectOf(res);
      expect(path, what).toBe('/login');
      if (next !== null) expectSameOrigin(next, origin, what);
    }
    const missing = await visitor.get('/', { 'HX-Request': 'true' });
    expect(redirectOf(missing)).toEqual({ path: '/login', next: null });
  });
});
