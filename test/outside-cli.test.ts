import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AWS, awsCliEnv } from '../packages/s3-store/test/aws-cli.js';
import { Client, signUp } from './support/app.js';
import { attr, attrs, texts } from './support/html.js';
import { makeJpeg } from './support/images.js';
import { startAppServer } from './support/server.js';

const run = promisify(execFile);
// Skipped only on a machine without the AWS CLI, outside CI: CI installs it.
const skip = !existsSync(AWS) && !process.env.CI;

/**
 * The zero-configuration install as an outside user works on it: the AWS CLI with the embedded
 * store's key puts a photo into a user's prefix and deletes one, and the gallery follows within
 * seconds, with nobody running reconcile.
 */
describe.skipIf(skip)('the AWS CLI on the embedded store, followed by the gallery', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let admin: Client;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let userId: string;

  beforeAll(async () => {
    // The 100 MiB photo of the personal-key test is over the default limit (25 MiB).
    app = await startAppServer({ MAX_UPLOAD_BYTES: String(200 * 1024 * 1024) });
    admin = new Client((i, init) => fetch(i, init), app.origin, app.origin);
    await signUp(admin, 'admin@example.com');
    const users = await (await admin.get('/admin')).text();
    userId = (attrs(users, 'a[href^="/users/"]', 'href')[0] ?? '').split('/').pop() as string;
    expect(userId).toMatch(/^[a-z0-9]+$/);
    const creds = JSON.parse(readFileSync(path.join(app.dataDir, 'embedded-s3.json'), 'utf8'));
    dir = mkdtempSync(path.join(tmpdir(), 's3g-cli-'));
    env = awsCliEnv(dir, creds);
  });
  afterAll(async () => {
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const aws = (...args: string[]) => run(AWS, ['--endpoint-url', `${app.origin}/s3`, ...args], { env });

  it('shows a photo copied in with `aws s3 cp`, and moves it to the trash once its original is removed with `aws s3 rm`', {
    timeout: 60_000,
  }, async () => {
    const file = path.join(dir, 'pier.jpg');
    writeFileSync(file, await makeJpeg(640, 480));
    const key = `s3://gallery/users/${userId}/originals/pier at night.jpg`;
    await aws('s3', 'cp', file, key);
    await vi.waitFor(async () => expect(await (await admin.get('/')).text()).toContain('pier at night'), {
      timeout: 15_000,
      interval: 250,
    });
    // Imported, the file is the image's original under a key of its own (no policy names it).
    const listed = (await aws('s3', 'ls', `s3://gallery/users/${userId}/originals/`)).stdout
      .trim()
      .split('\n');
    expect(listed).toHaveLength(1);
    const original = (listed[0] as string).trim().split(/\s+/).pop() as string;
    expect(original).toMatch(/^[0-9a-f-]{36}$/);
    await aws('s3', 'rm', `s3://gallery/users/${userId}/originals/${original}`);
    await vi.waitFor(
      async () => expect(await (await admin.get('/trash')).text()).toContain('pier at night'),
      {
        timeout: 15_000,
        interval: 250,
      },
    );
    expect(await (await admin.get('/')).text()).not.toContain('pier at night');
  });

  it('works with a personal key from the account page: `cp` in parts, `sync`, `ls`, `rm` on one’s own images; refused elsewhere and once revoked; audited', {
    timeout: 120_000,
  }, async () => {
    expect((await admin.post('/account/keys', { name: 'laptop', scope: 'own' })).status).toBe(303);
    const made = await (await admin.get('/account/keys/new')).text();
    const keyEnv = {
      ...env,
      AWS_ACCESS_KEY_ID: attr(made, '#key-id', 'value') ?? '',
      AWS_SECRET_ACCESS_KEY: attr(made, '#key-secret', 'value') ?? '',
    };
    expect(keyEnv.AWS_ACCESS_KEY_ID).toMatch(/^S3GK/);
    const own = (...args: string[]) =>
      run(AWS, ['--endpoint-url', `${app.origin}/s3`, ...args], { env: keyEnv, maxBuffer: 16 * 1024 * 1024 });
    const mine = `s3://gallery/users/${userId}`;

    // A 100 MiB photo (a JPEG, then bytes decoders pass over) goes up in 8 MiB parts (the CLI's
    // default) into the key's own originals, and becomes an image of that size.
    const big = path.join(dir, 'panorama.jpg');
    const photo = await makeJpeg(640, 480);
    writeFileSync(big, Buffer.concat([photo, Buffer.alloc(100 * 1024 * 1024 - photo.length)]));
    await own('s3', 'cp', big, `${mine}/originals/panorama.jpg`);
    await vi.waitFor(async () => expect(await (await admin.get('/')).text()).toContain('panorama'), {
      timeout: 30_000,
      interval: 250,
    });
    expect((await own('s3', 'ls', '--recursive', `${mine}/originals/`)).stdout).toContain(' 104857600 ');

    const trip = path.join(dir, 'trip');
    mkdirSync(trip);
    writeFileSync(path.join(trip, 'dune.jpg'), await makeJpeg(320, 240));
    writeFileSync(path.join(trip, 'oasis.jpg'), await makeJpeg(240, 320));
    await own('s3', 'sync', trip, `${mine}/originals/`);
    await vi.waitFor(
      async () => {
        const gallery = await (await admin.get('/')).text();
        expect(gallery).toContain('dune');
        expect(gallery).toContain('oasis');
      },
      { timeout: 15_000, interval: 250 },
    );

    // Anywhere else, and the whole bucket, are refused.
    const refused = async (...args: string[]) => {
      const err = await own(...args).then(
        () => null,
        (e: { stderr?: string }) => e.stderr ?? '',
      );
      return err;
    };
    expect(await refused('s3', 'ls', 's3://gallery/users/')).toContain('AccessDenied');
    expect(await refused('s3', 'cp', big, 's3://gallery/users/someone-else/x.bin')).toContain('AccessDenied');
    expect(await refused('s3api', 'list-objects', '--bucket', 'gallery')).toContain('AccessDenied');

    // Each request is in the audit log under the key's owner; the key says when it was last used.
    const audit = await (await admin.get('/admin/audit?action=s3_request')).text();
    expect(audit).toContain('used an S3 key');
    expect(audit).toContain('REST.PUT.PART');
    const account = await (await admin.get('/account')).text();
    expect(texts(account, '#keys td').join(' ')).not.toContain('never');

    // `rm --recursive` (one multi-delete) takes the originals away: their images go to the trash.
    await own('s3', 'rm', '--recursive', `${mine}/originals/`);
    await vi.waitFor(
      async () => {
        const trash = await (await admin.get('/trash')).text();
        for (const title of ['panorama', 'dune', 'oasis']) expect(trash).toContain(title);
      },
      { timeout: 15_000, interval: 250 },
    );

    const keyId = keyEnv.AWS_ACCESS_KEY_ID;
    expect((await admin.post(`/account/keys/${keyId}/revoke`, { confirm: 'yes' })).status).toBe(303);
    expect(await refused('s3', 'ls', `${mine}/`)).toContain('InvalidAccessKeyId');
  });
});
