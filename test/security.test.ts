import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assetVersion } from '../src/views/assets.js';
import { makeTestApp, PASSWORD, signUp, type TestApp } from './support/app.js';
import { attr, attrs, count, inlineHandlers } from './support/html.js';
import { makePng } from './support/images.js';
import { upload } from './support/uploads.js';

describe('request protection', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeTestApp();
  });
  afterEach(() => t.close());

  /**
   * Every route the app has that is not a GET (or middleware), its parameters filled in, so a new
   * route is tested without being listed here. Not the bucket's notifications: they carry no
   * cookie and are checked by their own proof (see bucket-events.test.ts).
   */
  const EVENT_ROUTES = ['/events/s3/sns', '/events/s3/minio'];
  const postRoutes = () => [
    ...new Set(
      t.app.routes
        .filter((route) => !['GET', 'ALL'].includes(route.method) && !EVENT_ROUTES.includes(route.path))
        .map((route) => route.path.replace(/:[^/]+/g, 'x')),
    ),
  ];

  it('finds the routes that change things: all POSTs, the newest among them', () => {
    expect(t.app.routes.filter((route) => !['GET', 'ALL', 'POST'].includes(route.method))).toEqual([]);
    expect(postRoutes()).toEqual(
      expect.arrayContaining(['/signup', '/uploads/complete', '/guest-links/x/turn-on', '/u/x/presign']),
    );
    expect(postRoutes().length).toBeGreaterThan(40);
  });

  it('refuses every POST from a foreign Origin with 403 and changes nothing', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const evil = t.client('https://evil.example');
    evil.cookies.set('s3g_session', admin.cookies.get('s3g_session') ?? '');
    for (const path of postRoutes()) {
      const res = await evil.post(path, { email: 'x@example.com', password: PASSWORD, role: 'admin' });
      expect(res.status, path).toBe(403);
      expect(await res.text(), path).toContain('came from another site');
    }
    expect(await t.services.invites.list()).toHaveLength(0);
    expect((await admin.get('/')).status).toBe(200);
  });

  it('refuses a cross-site JSON POST too, which Hono csrf() alone would let through', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    for (const path of ['/uploads/presign', '/uploads/complete']) {
      const res = await t.app.request(`${t.config.appOrigin}${path}`, {
        method: 'POST',
        body: JSON.stringify({ name: 'x.png', key: 'users/x/originals/y' }),
        headers: {
          'Content-Type': 'application/json',
          Cookie: admin.cookieHeader(),
          Origin: 'https://evil.example',
        },
      });
      expect(res.status, path).toBe(403);
      const fromSite = await t.app.request(`${t.config.appOrigin}${path}`, {
        method: 'POST',
        body: '{}',
        headers: {
          'Content-Type': 'application/json',
          Cookie: admin.cookieHeader(),
          'Sec-Fetch-Site': 'cross-site',
        },
      });
      expect(fromSite.status, path).toBe(403);
    }
    expect(await t.count('pending_uploads')).toBe(0);
  });

  it('takes Origin: null (a no-referrer page) only with the browser saying Sec-Fetch-Site: same-origin', async () => {
    const post = (headers: Record<string, string>) =>
      t.app.request(`${t.config.appOrigin}/login`, {
        method: 'POST',
        body: 'email=a%40example.com&password=wrong%20password',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'null', ...headers },
      });
    expect((await post({})).status).toBe(403);
    expect((await post({ 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    expect((await post({ 'Sec-Fetch-Site': 'same-origin' })).status).toBe(401);
  });

  it('refuses a form POST with no Origin and no Sec-Fetch-Site', async () => {
    const res = await t.app.request(`${t.config.appOrigin}/login`, {
      method: 'POST',
      body: 'email=a%40example.com&password=x',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(403);
  });

  it('sends security headers with a CSP that allows no inline script', async () => {
    const res = await t.client().get('/signup');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('same-origin');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    const html = await res.text();
    expect(count(html, 'script'), 'a page without scripts tests nothing').toBeGreaterThan(0);
    expect(count(html, 'script:not([src])')).toBe(0);
    expect(inlineHandlers(html)).toEqual([]);
  });

  it('serves htmx and thumbhash from our own origin with a long cache', async () => {
    const page = await (await t.client().get('/signup')).text();
    expect(attrs(page, 'script', 'src')).toContain('/vendor/htmx.min.js');
    expect(attrs(page, 'script[type="module"]', 'src')).toContainEqual(
      expect.stringMatching(/^\/public\/js\/placeholders\.js\?v=/),
    );
    expect(page).not.toMatch(/https?:\/\/(unpkg|cdn|cdnjs|jsdelivr)/);
    for (const [path, text] of [
      ['/vendor/htmx.min.js', 'htmx'],
      ['/vendor/thumbhash.js', 'export function thumbHashToDataURL'],
    ] as const) {
      const res = await t.client().get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe('text/javascript; charset=utf-8');
      expect(res.headers.get('cache-control'), path).toContain('max-age=31536000');
      expect(await res.text(), path).toContain(text);
    }
  });

  it('serves versioned static files as immutable and unversioned ones briefly', async () => {
    const page = await (await t.client().get('/signup')).text();
    const href = attr(page, 'link[rel="stylesheet"][href^="/public/css/app.css?"]', 'href');
    expect(href).toMatch(/^\/public\/css\/app\.css\?v=[0-9a-f]+$/);
    const css = await t.client().get(href as string);
    expect(css.status).toBe(200);
    expect(css.headers.get('cache-control')).toContain('immutable');
    const plain = await t.client().get('/public/css/app.css');
    expect(plain.headers.get('cache-control')).toBe('public, max-age=300');
    expect((await t.client().get('/public/../package.json')).status).toBe(404);
  });

  it('lets no cache keep any answer of a registered GET route for a signed-in user', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const adminUser = await t.user('admin@example.com');
    const imageId = await upload(admin, await makePng(), 'cached.png');
    const { token } = await t.services.shares.create({ user: adminUser, ip: 'test' }, [imageId], {
      expiry: '1d',
      allowDownload: true,
    });
    const params: Record<string, string> = { id: imageId, token };
    const assets = new Set([
      '/vendor/htmx.min.js',
      '/vendor/thumbhash.js',
      '/vendor/photoswipe-lightbox.esm.min.js',
      '/vendor/photoswipe.esm.min.js',
      '/vendor/photoswipe.css',
    ]);
    const paths = [...new Set(t.app.routes.filter((r) => r.method === 'GET').map((r) => r.path))];
    expect(paths.length).toBeGreaterThan(15);
    for (const route of paths) {
      if (assets.has(route)) continue;
      const path =
        route.startsWith('/users/') || route.startsWith('/admin/users/')
          ? route.replace(':id', adminUser.id)
          : route.replace(/:(\w+)/g, (_, name: string) => params[name] ?? `:${name}`);
      expect(path, `no value for a parameter of ${route}`).not.toContain(':');
      const res = await admin.get(path);
      expect(res.status, path).toBeLessThan(500);
      expect(res.headers.get('cache-control'), `${path} (${res.status})`).toBe('private, no-store');
    }
  });

  it('lets no cache keep error pages, JSON answers, or the login and sign-up pages', async () => {
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const answers = [
      await admin.get('/images/no-such-image'),
      await admin.get('/admin/users/nobody'),
      await admin.get('/no/such/page', { 'HX-Request': 'true' }),
      await admin.postJson('/uploads/presign', { name: 'a.png' }),
      await admin.postJson('/uploads/complete', { key: 'users/x/originals/y' }),
      await t.client().get('/login'),
      await t.client().get('/signup'),
      await t.client().get('/'),
      await t.client().post('/login', { email: 'admin@example.com', password: 'wrong password' }),
    ];
    for (const res of answers) expect(res.headers.get('cache-control'), res.url).toBe('private, no-store');
  });

  it('lets no cache keep the page a signed-in user gets for a static file that does not exist', async () => {
    // /public/<anything>.css is cached by extension by many CDNs: a public 404 naming the user would
    // be served to whoever asks for the same address next (web cache deception).
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    for (const path of ['/public/missing.css', `/public/js/nothing.js?v=${assetVersion}`]) {
      const res = await admin.get(path);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).toContain('admin@example.com');
      expect(res.headers.get('cache-control'), path).toBe('private, no-store');
    }
  });

  it('keeps long cache headers on static files only', async () => {
    for (const path of [
      '/vendor/htmx.min.js',
      '/vendor/thumbhash.js',
      '/vendor/photoswipe.esm.min.js',
      '/vendor/photoswipe.css',
      '/public/css/app.css',
      `/public/css/app.css?v=${assetVersion}`,
    ]) {
      const cacheControl = (await t.client().get(path)).headers.get('cache-control') ?? '';
      expect(cacheControl, path).toMatch(/^public, max-age=\d+/);
      expect(cacheControl, path).not.toContain('no-store');
    }
  });

  it('answers unknown pages with a 404 page, not a stack trace', async () => {
    const res = await t.client().get('/no/such/page');
    expect(res.status).toBe(404);
    const html = await res.text();
    expect(html).toContain('Not found');
    expect(count(html, 'html')).toBe(1);
  });

  it('answers an unexpected failure with a generic 500 page and no stack trace', async () => {
    t.app.get('/explode', () => {
      throw new Error('secret internal detail at /src/whatever.ts:12');
    });
    const res = await t.client().get('/explode');
    expect(res.status).toBe(500);
    const html = await res.text();
    expect(html).toContain('Something went wrong');
    expect(html).not.toContain('secret internal detail');
    expect(html).not.toContain('.ts:');
  });

  it('gives htmx requests an error fragment instead of a page', async () => {
    const res = await t.client().get('/no/such/page', { 'HX-Request': 'true' });
    expect(res.status).toBe(404);
    const html = await res.text();
    expect(html).not.toContain('<html');
    expect(count(html, '[role="alert"]')).toBeGreaterThan(0);
  });

  it('refuses an oversized form body with 413', async () => {
    const res = await t.client().post('/login', { email: 'a@example.com', password: 'x'.repeat(300 * 1024) });
    expect(res.status).toBe(413);
  });

  it('reports health with a database check', async () => {
    const res = await t.client().get('/healthz');
    expect(res.status).toBe(200);
    const databaseKind = t.services.databaseKind;
    expect(await res.json()).toEqual({
      status: 'ok',
      database: 'ok',
      databaseKind,
      storage: 'ok',
      processing: { waiting: 0, running: 0, failed: 0, oldestSeconds: 0 },
    });
    await t.services.database.close();
    const broken = await t.client().get('/healthz');
    expect(broken.status).toBe(503);
    expect(await broken.json()).toEqual({ status: 'error', database: 'failed', databaseKind });
  });

  it('has no GET that changes state: GET /logout does not end the session', async () => {
    const client = t.client();
    await signUp(client, 'admin@example.com');
    expect((await client.get('/logout')).status).toBe(404);
    expect((await client.get('/')).status).toBe(200);
  });
});
