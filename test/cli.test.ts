import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/connection.js';
import { migrations } from '../src/db/migrations.js';
import { Client, PASSWORD, signUp } from './support/app.js';
import { cli } from './support/process.js';
import { startAppServer } from './support/server.js';
import { startTestStore } from './support/store.js';

describe('the command line', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let env: Record<string, string>;

  beforeAll(async () => {
    app = await startAppServer({});
    env = { DATA_DIR: app.dataDir, PORT: new URL(app.origin).port, APP_ORIGIN: app.origin };
    await signUp(new Client((i, init) => fetch(i, init), app.origin, app.origin), 'admin@example.com');
  });
  afterAll(() => app.close());

  const login = (email: string, password: string) =>
    new Client((i, init) => fetch(i, init), app.origin, app.origin).post('/login', { email, password });

  it('creates an account with a generated password that works, and refuses a duplicate or a bad role', async () => {
    const made = await cli(['user:create', '--email', 'vera@example.com', '--role', 'viewer'], env);
    expect(made.code, made.err).toBe(0);
    expect(made.out).toContain('Created vera@example.com (viewer)');
    const password = made.out.match(/Password: (\S+)/)?.[1] as string;
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect((await login('vera@example.com', password)).status).toBe(303);

    const again = await cli(['user:create', '--email', 'VERA@example.com', '--role', 'member'], env);
    expect(again.code).toBe(1);
    expect(again.err).toContain('already exists');
    const badRole = await cli(['user:create', '--email', 'x@example.com', '--role', 'root'], env);
    expect(badRole.code).toBe(1);
    expect(badRole.err).toContain('Choose a role');
    expect(badRole.err).not.toMatch(/\n\s+at /);
  });

  it('resets a password from standard input and signs the account out everywhere', async () => {
    const user = new Client((i, init) => fetch(i, init), app.origin, app.origin);
    await cli(
      ['user:create', '--email', 'max@example.com', '--role', 'member', '--password-stdin'],
      env,
      `${PASSWORD}\n`,
    );
    expect((await user.post('/login', { email: 'max@example.com', password: PASSWORD })).status).toBe(303);
    expect((await user.get('/')).status).toBe(200);

    const reset = await cli(
      ['user:reset-password', '--email', 'max@example.com', '--password-stdin'],
      env,
      'a brand new password\n',
    );
    expect(reset.code, reset.err).toBe(0);
    expect(reset.out).not.toContain('a brand new password');
    expect((await user.get('/')).status).toBe(303);
    expect((await login('max@example.com', PASSWORD)).status).toBe(401);
    expect((await login('max@example.com', 'a brand new password')).status).toBe(303);

    const unknown = await cli(['user:reset-password', '--email', 'nobody@example.com'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no account');

    const db = openDatabase(path.join(app.dataDir, 'gallery.db'));
    const actions = db
      .prepare('SELECT action FROM audit_log WHERE actor_id IS NULL ORDER BY id')
      .pluck()
      .all();
    db.close();
    expect(actions).toEqual(expect.arrayContaining(['user_create', 'password_reset']));
  });

  it('doctor passes against the running app with its embedded store', async () => {
    const run = await cli(['doctor'], env);
    expect(run.code, run.out).toBe(0);
    for (const name of [
      'database',
      'bucket reachable',
      'credentials can put, get and delete',
      'bucket is not public',
      'credentials can send large uploads in parts',
    ]) {
      expect(run.out).toMatch(new RegExp(`^ok +${name}`, 'm'));
    }
    expect(run.out).toContain('All checks passed.');
  });

  it('doctor fails with a fix when the store is not running, and reports missing CORS on an external bucket', async () => {
    const down = await cli(['doctor'], { ...env, PORT: '1' });
    expect(down.code).toBe(1);
    expect(down.out).toMatch(/^FAIL +bucket reachable/m);
    expect(down.out).toContain('fix: the embedded store is served by the app');

    // An "external" S3 without CORS: the embedded store on its own port answers no preflight.
    const store = await startTestStore();
    try {
      const external = {
        ...env,
        S3_ENDPOINT: store.endpoint,
        S3_BUCKET: store.bucket,
        S3_ACCESS_KEY_ID: store.credentials.accessKeyId,
        S3_SECRET_ACCESS_KEY: store.credentials.secretAccessKey,
        S3_FORCE_PATH_STYLE: 'true',
      };
      const run = await cli(['doctor'], external);
      expect(run.code).toBe(1);
      expect(run.out).toMatch(/^ok +credentials can put, get and delete/m);
      expect(run.out).toMatch(/^FAIL +CORS allows the app origin/m);
      // The bucket's own settings: this store implements none of the three reads, and doctor says so.
      expect(run.out).toMatch(/^ok +encryption at rest/m);
      expect(run.out).toContain('not reported by this bucket (NotImplemented)');
      expect(run.out).toContain('print:cors');
      // And the probe object is gone afterwards.
      expect((await store.storage.list('users/')).keys).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('prints an IAM policy for the app, one limited to a user, and the CORS rules', async () => {
    const s3 = { ...env, S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_BUCKET: 'my-pics' };
    const forApp = await cli(['print:iam-policy'], s3);
    expect(forApp.code).toBe(0);
    const policy = JSON.parse(forApp.out);
    expect(policy.Statement[0].Resource).toBe('arn:aws:s3:::my-pics/users/*');
    const user = JSON.parse((await cli(['print:iam-policy', '--user', 'abc123def456ghi7'], s3)).out);
    expect(user.Statement[0].Resource).toBe('arn:aws:s3:::my-pics/users/abc123def456ghi7/*');
    expect(user.Statement[1].Condition.StringLike['s3:prefix']).toEqual(['users/abc123def456ghi7/*']);
    const bad = await cli(['print:iam-policy', '--user', '*'], s3);
    expect(bad.code).toBe(1);
    expect(bad.out).toBe('');
    const cors = JSON.parse((await cli(['print:cors'], s3)).out);
    expect(cors.CORSRules[0].AllowedOrigins).toEqual([env.APP_ORIGIN]);
    expect(cors.CORSRules[0].AllowedMethods).toEqual(expect.arrayContaining(['POST', 'PUT']));
    // Large browser uploads go in parts: the app aborts them, and reads which parts arrived.
    expect(policy.Statement[0].Action).toEqual(
      expect.arrayContaining(['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts']),
    );
  });

  // Four runs of the command line, each a new Node process: slow on a busy two-core machine.
  it('backs up the database while the app writes to it: a consistent copy, never over an existing file', {
    timeout: 90_000,
  }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 's3g-backup-'));
    const rowsNow = () => {
      const db = openDatabase(path.join(app.dataDir, 'gallery.db'));
      try {
        return db.prepare('SELECT count(*) FROM audit_log').pluck().get() as number;
      } finally {
        db.close();
      }
    };
    try {
      // Logins write a session and an audit row each, all through the backup.
      let writing = true;
      const writer = (async () => {
        let n = 0;
        while (writing) {
          expect((await login('admin@example.com', PASSWORD)).status).toBe(303);
          n++;
        }
        return n;
      })();
      await new Promise((r) => setTimeout(r, 200));
      const before = rowsNow();
      const target = path.join(dir, 'gallery-backup.db');
      const made = await cli(['backup', target], env);
      const after = rowsNow();
      writing = false;
      expect(await writer).toBeGreaterThan(0);
      expect(made.code, made.err).toBe(0);
      expect(made.out).toContain(`to ${target}`);
      const copy = new Database(target, { readonly: true });
      try {
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(copy.pragma('user_version', { simple: true })).toBe(migrations.length);
        const copied = copy.prepare('SELECT count(*) FROM audit_log').pluck().get() as number;
        // One moment's state, taken while the logins went on.
        expect(copied).toBeGreaterThanOrEqual(before);
        expect(copied).toBeLessThanOrEqual(after);
        expect(made.out).toContain(`audit_log ${copied}`);
        expect(copy.prepare('SELECT email FROM users').pluck().all()).toContain('admin@example.com');
      } finally {
        copy.close();
      }
      const sizeBefore = statSync(target).size;
      const again = await cli(['backup', target], env);
      expect(again.code).toBe(1);
      expect(again.err).toContain('already exists');
      expect(statSync(target).size).toBe(sizeBefore);
      const nowhere = await cli(['backup', path.join(dir, 'x.db')], {
        ...env,
        DATA_DIR: path.join(dir, 'empty'),
      });
      expect(nowhere.code).toBe(1);
      expect(nowhere.err).toContain('There is no database');
      expect(readdirSync(dir).sort()).toEqual(['gallery-backup.db']);
      const usage = await cli(['backup'], env);
      expect(usage.code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains itself and refuses an unknown command', async () => {
    const help = await cli(['--help'], env);
    expect(help.code).toBe(0);
    for (const c of [
      'user:create',
      'user:reset-password',
      'doctor',
      'print:iam-policy',
      'print:cors',
      'reconcile',
    ])
      expect(help.out).toContain(c);
    const unknown = await cli(['frobnicate'], env);
    expect(unknown.code).toBe(2);
  });
});
