import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf } from '../packages/s3-store/test/support.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, count, hiddenForm, text } from './support/html.js';
import { makeJpeg } from './support/images.js';

/**
 * People's own S3 keys to the embedded store, made on the account page: shown once, sealed with
 * DATA_DIR's key, limited to the owner's images (or to reading them; bucket-wide for admins),
 * revoked at once, every request audited in the owner's name.
 */
describe('personal S3 access keys', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  let vera: Client;
  let aliceId: string;
  let bobId: string;

  beforeAll(async () => {
    t = await makeTestApp({ livePickup: true });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    vera = await signUpWithRole(t, admin, 'vera@example.com', 'viewer');
    aliceId = (await t.user('alice@example.com')).id;
    bobId = (await t.user('bob@example.com')).id;
    await t.store.storage.put(`users/${bobId}/private.txt`, Buffer.from('bob only'), 'text/plain');
  });
  afterAll(() => t.close());

  /** Makes a key on the account page as a person would, and reads it off the page that shows it once. */
  async function makeKey(client: Client, name: string, scope: string) {
    const made = await client.post('/account/keys', { name, scope });
    expect(made.status, (await made.text()).slice(0, 300)).toBe(303);
    expect(made.headers.get('location')).toBe('/account/keys/new');
    const res = await client.get('/account/keys/new');
    const html = await res.text();
    expect(res.status, html.slice(0, 300)).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const id = attr(html, '#key-id', 'value') ?? '';
    const secret = attr(html, '#key-secret', 'value') ?? '';
    // The commands hold the same values, ready to paste.
    expect(text(html, '#key-commands')).toContain(`export AWS_SECRET_ACCESS_KEY=${secret}`);
    expect(id).toMatch(/^S3GK[0-9A-F]{20}$/);
    expect(secret.length).toBeGreaterThanOrEqual(40);
    const s3 = new S3Client({
      endpoint: t.store.endpoint,
      region: t.store.region,
      credentials: { accessKeyId: id, secretAccessKey: secret },
      forcePathStyle: true,
      maxAttempts: 1,
    });
    return { id, secret, html, s3 };
  }

  it('shows the secret once, with what a tool needs, and keeps it only sealed', async () => {
    const { id, secret, html } = await makeKey(alice, 'laptop', 'own');
    expect(html).toContain(`s3://gallery/users/${aliceId}/originals/photo.jpg`);
    expect(html).toContain(`--endpoint-url ${t.store.endpoint}`);
    const account = await (await alice.get('/account')).text();
    expect(account).toContain(id);
    expect(account).toContain('laptop');
    expect(account).not.toContain(secret);
    const row = await t.services.database.q
      .selectFrom('access_keys')
      .select('secret_box')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.secret_box).toMatch(/^v1\./);
    expect(row.secret_box).not.toContain(secret);
    const keyFile = path.join(t.dataDir, 'access-keys.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile)).toHaveLength(32);
    expect(await t.count('audit_log', `action = 'key_create' AND target = '${id}'`)).toBe(1);
  });

  it('shows a new key on the page after the POST, once: a reload makes no second key and shows no secret', async () => {
    const before = await t.count('access_keys', `user_id = '${aliceId}'`);
    const made = await alice.post('/account/keys', { name: 'desktop', scope: 'read' });
    expect(made.status).toBe(303);
    // The secret rides to that page in a cookie no other site sends and no script reads.
    const cookie = made.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    // Someone else given the same cookie sees nothing of it.
    const [pair = ''] = cookie.split(';');
    bob.cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    const bobsTry = await bob.get('/account/keys/new');
    expect(bobsTry.status).toBe(303);
    expect(await bobsTry.text()).not.toContain('key-secret');
    const shown = await alice.get('/account/keys/new');
    expect(shown.status).toBe(200);
    const secret = attr(await shown.text(), '#key-secret', 'value') ?? '';
    expect(secret.length).toBeGreaterThanOrEqual(40);
    const again = await alice.get('/account/keys/new');
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('/account?keyShownOnce=1#keys');
    const told = await (await alice.get(again.headers.get('location') as string)).text();
    expect(text(told, '#keys [role="status"]')).toContain('shown once');
    expect(told).not.toContain(secret);
    expect(await t.count('access_keys', `user_id = '${aliceId}'`)).toBe(before + 1);
  });

  it('works on its owner’s images only: a put there becomes an image; elsewhere AccessDenied; all audited', async () => {
    const { id, s3 } = await makeKey(alice, 'camera', 'own');
    const Bucket = t.store.bucket;
    await s3.send(
      new PutObjectCommand({
        Bucket,
        Key: `users/${aliceId}/originals/harbour.jpg`,
        Body: await makeJpeg(320, 240),
        ContentType: 'image/jpeg',
      }),
    );
    await t.services.outsideChanges.idle();
    await t.settle();
    expect(await t.count('images', `owner_id = '${aliceId}' AND title = 'harbour'`)).toBe(1);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: `users/${aliceId}/` }));
    expect(listed.KeyCount).toBeGreaterThan(0);

    expect(await codeOf(s3.send(new GetObjectCommand({ Bucket, Key: `users/${bobId}/private.txt` })))).toBe(
      'AccessDenied',
    );
    expect(
      await codeOf(
        s3.send(new PutObjectCommand({ Bucket, Key: `users/${bobId}/originals/x.jpg`, Body: 'x' })),
      ),
    ).toBe('AccessDenied');
    expect(
      await codeOf(s3.send(new DeleteObjectCommand({ Bucket, Key: `users/${bobId}/private.txt` }))),
    ).toBe('AccessDenied');
    expect(await codeOf(s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'users/' })))).toBe(
      'AccessDenied',
    );
    // Its owner's copies and uploads in flight are the app's: a key writes originals only.
    expect(
      await codeOf(
        s3.send(new PutObjectCommand({ Bucket, Key: `users/${aliceId}/thumbs/x.webp`, Body: 'x' })),
      ),
    ).toBe('AccessDenied');
    expect(await t.store.storage.head(`users/${bobId}/private.txt`)).not.toBeNull();

    const audited = async (like: string) =>
      t.count('audit_log', `action = 's3_request' AND actor_id = '${aliceId}' AND detail LIKE '${like}'`);
    await t.settle();
    expect(await audited(`REST.PUT.OBJECT 200, key ${id}%`)).toBe(1);
    expect(await audited(`REST.GET.OBJECT 403 AccessDenied, key ${id}%`)).toBe(1);
    const account = await (await alice.get('/account')).text();
    expect(account).not.toMatch(new RegExp(`${id}</code></td><td>[^<]*</td><td>[^<]*</td><td>never`));
  });

  it('a read-only key reads its owner’s images and writes nothing', async () => {
    const { s3 } = await makeKey(alice, 'backup', 'read');
    const Bucket = t.store.bucket;
    await t.store.storage.put(`users/${aliceId}/notes.txt`, Buffer.from('hello'), 'text/plain');
    const got = await s3.send(new GetObjectCommand({ Bucket, Key: `users/${aliceId}/notes.txt` }));
    expect(await got.Body?.transformToString()).toBe('hello');
    expect(
      await codeOf(
        s3.send(new PutObjectCommand({ Bucket, Key: `users/${aliceId}/originals/r.jpg`, Body: 'x' })),
      ),
    ).toBe('AccessDenied');
    expect(
      await codeOf(s3.send(new DeleteObjectCommand({ Bucket, Key: `users/${aliceId}/notes.txt` }))),
    ).toBe('AccessDenied');
  });

  it('stops at once when revoked (by its owner or an admin, nobody else), or when its owner is disabled', async () => {
    const first = await makeKey(alice, 'phone', 'own');
    const Bucket = t.store.bucket;
    const list = (s3: S3Client) => s3.send(new ListObjectsV2Command({ Bucket, Prefix: `users/${aliceId}/` }));
    expect(await codeOf(list(first.s3))).toBe('');
    const yes = { confirm: 'yes' };
    expect((await bob.post(`/account/keys/${first.id}/revoke`)).status).toBe(404);
    expect((await bob.post(`/account/keys/${first.id}/revoke`, yes)).status).toBe(404);
    expect(
      (await t.client('https://evil.example').post(`/account/keys/${first.id}/revoke`, yes)).status,
    ).toBe(403);
    expect(await codeOf(list(first.s3))).toBe('');
    // Revoke asks first, naming the key; asking changes nothing.
    const asked = await alice.post(`/account/keys/${first.id}/revoke`);
    expect(asked.status).toBe(200);
    const question = await asked.text();
    expect(text(question, 'h1')).toBe('Revoke the key “phone”?');
    expect(hiddenForm(question, `form[action="/account/keys/${first.id}/revoke"]`).fields).toEqual([
      ['confirm', 'yes'],
    ]);
    expect(await codeOf(list(first.s3))).toBe('');
    const res = await alice.post(`/account/keys/${first.id}/revoke`, yes);
    expect(res.status).toBe(303);
    expect(await codeOf(list(first.s3))).toBe('InvalidAccessKeyId');
    // The page lands on the keys, so the notice is there, not above the fold.
    expect(res.headers.get('location')).toMatch(/#keys$/);
    const landed = await (await alice.get(res.headers.get('location') as string)).text();
    expect(text(landed, '#keys [role="status"]')).toContain('The key is revoked');

    const second = await makeKey(alice, 'tablet', 'own');
    expect((await admin.post(`/account/keys/${second.id}/revoke`, yes)).status).toBe(303);
    expect(await codeOf(list(second.s3))).toBe('InvalidAccessKeyId');
    expect(await t.count('audit_log', `action = 'key_revoke'`)).toBe(2);

    const third = await makeKey(bob, 'desktop', 'own');
    const listBob = () => third.s3.send(new ListObjectsV2Command({ Bucket, Prefix: `users/${bobId}/` }));
    expect(await codeOf(listBob())).toBe('');
    expect((await admin.post(`/admin/users/${bobId}/disable`)).status).toBe(303);
    expect(await codeOf(listBob())).toBe('InvalidAccessKeyId');
    expect((await admin.post(`/admin/users/${bobId}/enable`)).status).toBe(303);
    expect(await codeOf(listBob())).toBe('');
  });

  it('bucket-wide keys are for admins; viewers have none', async () => {
    expect((await alice.post('/account/keys', { name: 'all', scope: 'bucket' })).status).toBe(403);
    expect((await alice.post('/account/keys', { name: 'odd', scope: 'everything' })).status).toBe(400);
    const wide = await makeKey(admin, 'ops', 'bucket');
    const got = await wide.s3.send(
      new GetObjectCommand({ Bucket: t.store.bucket, Key: `users/${bobId}/private.txt` }),
    );
    expect(await got.Body?.transformToString()).toBe('bob only');
    expect(count(await (await vera.get('/account')).text(), '#keys')).toBe(0);
    expect((await vera.post('/account/keys', { name: 'v', scope: 'read' })).status).toBe(403);
    expect(count(await (await admin.get('/account')).text(), 'input[value="bucket"]')).toBe(1);
    expect(count(await (await alice.get('/account')).text(), 'input[value="bucket"]')).toBe(0);
  });

  it('holds its limit of 10 live keys when many are made at once', async () => {
    const carol = await signUpWithRole(t, admin, 'carol@example.com', 'member');
    const carolId = (await t.user('carol@example.com')).id;
    const answers = await Promise.all(
      Array.from({ length: 14 }, (_, i) => carol.post('/account/keys', { name: `k${i}`, scope: 'own' })),
    );
    expect(answers.filter((r) => r.status === 303)).toHaveLength(10);
    const refused = answers.filter((r) => r.status === 400);
    expect(refused).toHaveLength(4);
    expect(await (refused[0] as Response).text()).toContain('You have 10 keys already');
    expect(await t.count('access_keys', `user_id = '${carolId}' AND revoked_at IS NULL`)).toBe(10);
  });

  it('holds its owner’s limits: an original overwritten past the quota is deleted and its image fails saying so', async () => {
    const dana = await signUpWithRole(t, admin, 'dana@example.com', 'member');
    const danaId = (await t.user('dana@example.com')).id;
    const { s3 } = await makeKey(dana, 'camera', 'own');
    const Bucket = t.store.bucket;
    await s3.send(
      new PutObjectCommand({
        Bucket,
        Key: `users/${danaId}/originals/quay.jpg`,
        Body: await makeJpeg(64, 48),
      }),
    );
    await t.services.outsideChanges.idle();
    await t.settle();
    const image = await t.services.database.q
      .selectFrom('images')
      .select(['id', 'original_key'])
      .where('owner_id', '=', danaId)
      .executeTakeFirstOrThrow();
    expect((await admin.post(`/admin/users/${danaId}/quota`, { mib: '1', images: '' })).status).toBe(303);
    // Nested keys are nobody's images: a key cannot store them.
    expect(
      await codeOf(
        s3.send(new PutObjectCommand({ Bucket, Key: `users/${danaId}/originals/x/y.jpg`, Body: 'x' })),
      ),
    ).toBe('AccessDenied');
    await s3.send(
      new PutObjectCommand({ Bucket, Key: image.original_key, Body: Buffer.alloc(2 * 1024 * 1024) }),
    );
    await t.services.outsideChanges.idle();
    await t.settle();
    const after = await t.services.database.q
      .selectFrom('images')
      .select(['state', 'failure', 'bytes'])
      .where('id', '=', image.id)
      .executeTakeFirstOrThrow();
    expect(after).toMatchObject({ state: 'failed', bytes: 0 });
    expect(after.failure).toContain('storage quota');
    expect(await t.store.storage.head(image.original_key)).toBeNull();
  });

  it('refuses a blank or too long name, and says why', async () => {
    for (const name of ['', '   ', 'x'.repeat(101)]) {
      const res = await alice.post('/account/keys', { name, scope: 'own' });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(await res.text()).toContain('Name the key');
    }
  });
});
