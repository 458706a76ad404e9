import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import { Client, PASSWORD, signUp } from './support/app.js';
import { FROM_SOURCES } from './support/process.js';

describe('a real listening server', () => {
  let running: RunningServer;
  let dataDir: string;
  let client: Client;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-server-'));
    const config = loadConfig({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent' });
    running = await startServer(config);
    client = new Client(
      (input, init) => fetch(input.replace(config.appOrigin, running.url), init),
      config.appOrigin,
      config.appOrigin,
    );
  });
  afterAll(async () => {
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers /healthz over HTTP', async () => {
    const res = await fetch(`${running.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ok',
      database: 'ok',
      databaseKind: 'sqlite',
      storage: 'ok',
      processing: { waiting: 0, running: 0, failed: 0, oldestSeconds: 0 },
    });
  });

  it('signs up, shows the empty gallery, logs out and logs in again over real sockets', async () => {
    await signUp(client, 'owner@example.com');
    expect(await (await client.get('/')).text()).toContain('No images yet');
    expect((await client.post('/logout')).status).toBe(303);
    expect((await client.get('/')).status).toBe(303);
    const login = await client.post('/login', { email: 'owner@example.com', password: PASSWORD });
    expect(login.status).toBe(303);
    expect((await client.get('/')).status).toBe(200);
    expect(existsSync(path.join(dataDir, 'gallery.db'))).toBe(true);
  });

  it('serves the embedded store under /s3 with credentials kept in DATA_DIR, readable by the owner only', async () => {
    const file = path.join(dataDir, 'embedded-s3.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const creds = JSON.parse(readFileSync(file, 'utf8'));
    expect(creds).toMatchObject({ region: 'us-east-1', bucket: 'gallery' });
    expect(creds.secretAccessKey.length).toBeGreaterThanOrEqual(32);
    const anonymous = await fetch(`${running.url}/s3/gallery`);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain('<Code>AccessDenied</Code>');
    const { createStorage } = await import('../src/storage/s3.js');
    const storage = createStorage({
      endpoint: `${running.url}/s3`,
      region: creds.region,
      bucket: creds.bucket,
      credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
      forcePathStyle: true,
    });
    await storage.put('users/x/probe.txt', Buffer.from('hi'), 'text/plain');
    expect((await storage.head('users/x/probe.txt'))?.size).toBe(2);
  });

  it('answers a huge header with 431 and keeps serving', async () => {
    const res = await fetch(`${running.url}/`, { headers: { 'X-Filler': 'x'.repeat(64 * 1024) } });
    expect(res.status).toBe(431);
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });

  it('refuses a cross-site form post from a real socket', async () => {
    const res = await fetch(`${running.url}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example' },
      body: 'email=owner%40example.com&password=x',
    });
    expect(res.status).toBe(403);
  });
});

/** `src/server.ts` in a process of its own on DATA_DIR `dataDir` and a free port; its URL once it listens. */
async function spawnServer(
  dataDir: string,
): Promise<{ child: ChildProcessByStdio<null, Readable, Readable>; url: string }> {
  const child = spawn(process.execPath, [...FROM_SOURCES, 'src/server.ts'], {
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/"url":"(http:\/\/[^"]+)"/);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
  });
  return { child, url };
}

describe('the server process', () => {
  it.skipIf(process.platform !== 'linux')(
    'loads the image library when an upload is presigned, not at start-up nor for browsing',
    async () => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-proc-'));
      const { child, url } = await spawnServer(dataDir);
      try {
        const { appOrigin } = loadConfig({ DATA_DIR: dataDir, PORT: '0' });
        const client = new Client(
          (input, init) => fetch(input.replace(appOrigin, url), init),
          appOrigin,
          appOrigin,
        );
        const libvipsLoaded = () => readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes('libvips');
        await signUp(client, 'first@example.com');
        expect((await client.get('/')).status).toBe(200);
        expect(libvipsLoaded()).toBe(false);
        const presign = await client.postJson('/uploads/presign', { name: 'a.jpg', size: 1000 });
        expect(presign.status).toBe(200);
        // In the background, while the file would travel to the bucket: no completion asked for it.
        const deadline = Date.now() + 10_000;
        while (!libvipsLoaded() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(libvipsLoaded()).toBe(true);
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        }
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );

  it('exits 0 on SIGTERM after finishing, and reports a bad setting by name', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-proc-'));
    try {
      const { child, url } = await spawnServer(dataDir);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      // A clean close checkpoints the WAL into the main file and removes it.
      expect(existsSync(path.join(dataDir, 'gallery.db-wal'))).toBe(false);

      const bad = spawn(process.execPath, [...FROM_SOURCES, 'src/server.ts'], {
        env: { ...process.env, DATA_DIR: dataDir, PORT: 'eighty' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      bad.stderr.on('data', (d) => {
        err += d;
      });
      const code = await new Promise<number | null>((resolve) => bad.once('exit', resolve));
      expect(code).toBe(1);
      expect(err).toContain('PORT');
      expect(err).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
