import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeTestApp, signUp, type TestApp } from './support/app.js';
import { text } from './support/html.js';

/** What the error page (or a JSON answer) says. */
async function refusal(res: Response): Promise<string | undefined> {
  const body = await res.text();
  if (res.headers.get('content-type')?.startsWith('application/json')) return JSON.parse(body).error;
  return text(body, 'main p')?.trim();
}

describe('input the routes cannot use', () => {
  let t: TestApp;
  let admin: Client;
  let imageId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    const ownerId = (await t.user('admin@example.com')).id;
    await t.seedImages(ownerId, 1);
    imageId = (await t.imageIdsNewestFirst(ownerId))[0] as string;
  });
  afterAll(() => t.close());

  /** A request with this body and type, from the signed-in admin's browser. */
  const raw = (path: string, body: string, type: string) =>
    t.app.request(new URL(path, t.config.appOrigin).toString(), {
      method: 'POST',
      body,
      headers: {
        'Content-Type': type,
        Accept: type === 'application/json' ? 'application/json' : 'text/html',
        Origin: t.config.appOrigin,
        Cookie: admin.cookieHeader(),
      },
    });

  it('answers a form that cannot be read with a 400 that says so', async () => {
    for (const path of [`/images/${imageId}/rename`, '/images/delete', '/login']) {
      const res = await raw(path, '--x\r\nbroken', 'multipart/form-data; boundary=x');
      expect(res.status, path).toBe(400);
      expect(await refusal(res), path).toBe(
        'That form could not be read. Please reload the page and try again.',
      );
    }
  });

  it('answers a NUL typed into an address, a cookie or a form like any other wrong value (PostgreSQL text cannot hold one)', async () => {
    const stranger = t.client();
    for (const path of [
      '/images/%00',
      `/images/${imageId}%00`,
      '/admin/users/%00',
      '/users/%00',
      '/s/%00abc',
      '/uploads/complete?key=users%2F%00&etag=%00',
    ]) {
      const res = await admin.get(path);
      expect([400, 404], path).toContain(res.status);
    }
    const forged = await t.app.request(new URL('/', t.config.appOrigin).toString(), {
      headers: { Cookie: 's3g_session=abc%00.def' },
    });
    expect(forged.status).toBe(303);
    expect(forged.headers.get('location')).toMatch(/^\/login/);
    const login = await stranger.post('/login', { email: 'admin@example.com\0', password: 'wrong\0' });
    expect(login.status).toBe(401);
    const renamed = await admin.post(`/images/${imageId}/rename`, { title: 'Harbour\0 at dusk' });
    expect(renamed.status).toBe(303);
    const image = await t.services.images.getForUser(await t.user('admin@example.com'), imageId);
    expect(image.title).toBe('Harbour at dusk');
    expect((await admin.post('/images/delete', { ids: `${imageId}\0` })).status).toBe(404);
    expect(await t.count('images')).toBe(1);
  });

  it('asks for a selection when the share options form names no images', async () => {
    const res = await admin.post('/shares', { expiry: '1d' });
    expect(res.status).toBe(400);
    expect(await refusal(res)).toBe('Select some images first.');
  });

  it("sends a gallery's empty selection back to that gallery with a sentence, not an error page", async () => {
    const adminId = (await t.user('admin@example.com')).id;
    for (const path of ['/images/delete', '/shares/new']) {
      const answers: [back: string, gallery: string][] = [
        ['/', '/'],
        [`/users/${adminId}`, `/users/${adminId}`],
        ['https://evil.example/', '/'],
      ];
      for (const [back, gallery] of answers) {
        const res = await admin.post(path, { confirm: 'yes', back });
        expect(res.status, path).toBe(303);
        expect(res.headers.get('location'), path).toBe(`${gallery}?unselected=1`);
        const page = await admin.get(res.headers.get('location') ?? '');
        expect(text(await page.text(), '[role="status"]'), path).toBe(
          'Nothing was selected: tick the images first, then press the button again.',
        );
      }
    }
    expect(await t.count('images')).toBe(1);
  });

  it('answers the upload script with a JSON refusal for anything but a JSON object', async () => {
    const answers = [
      await raw('/uploads/presign', '{not json', 'application/json'),
      await raw('/uploads/complete', '{not json', 'application/json'),
      await raw('/uploads/presign', '{"name":"a.png"}', 'text/plain'),
      await admin.postJson('/uploads/presign', [1, 2]),
      await admin.postJson('/uploads/complete', null),
    ];
    for (const res of answers) {
      expect(res.status).toBe(400);
      expect(await refusal(res)).toBe('Send a JSON object.');
    }
  });

  it('refuses a file size that is not a whole number of bytes above zero', async () => {
    for (const size of [0, -1, 1.5, '100', null, 2 ** 60]) {
      const res = await admin.postJson('/uploads/presign', { name: 'a.png', size });
      expect(res.status, String(size)).toBe(400);
      expect(await refusal(res)).toBe('The file size must be a whole number of bytes, more than zero.');
    }
  });
});
