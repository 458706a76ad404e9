import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, signUp } from './support/app.js';
import { attrs } from './support/html.js';
import { makeJpeg } from './support/images.js';
import { startAppServer } from './support/server.js';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
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
    app = await startAppServer({});
    admin = new Client((i, init) => fetch(i, init), app.origin, app.origin);
    await signUp(admin, 'admin@example.com');
    const users = await (await admin.get('/admin')).text();
    userId = (attrs(users, 'a[href^="/users/"]', 'href')[0] ?? '').split('/').pop() as string;
    expect(userId).toMatch(/^[a-z0-9]+$/);
    const creds = JSON.parse(readFileSync(path.join(app.dataDir, 'embedded-s3.json'), 'utf8'));
    dir = mkdtempSync(path.join(tmpdir(), 's3g-cli-'));
    const config = path.join(dir, 'config');
    writeFileSync(config, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_CONFIG_FILE: config,
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
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
});
