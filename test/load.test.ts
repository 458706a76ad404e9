import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, signUp } from './support/app.js';
import { makePng } from './support/images.js';
import { freePort, type ServerProcess, spawnServer } from './support/process.js';
import { type Policy, postToBucket } from './support/uploads.js';

const SESSIONS = 200;
const SECONDS = Number(process.env.LOAD_SECONDS || 15);
/**
 * Each session's least number of steps (one upload in every ten), however long they take: the
 * load is this much work for at least SECONDS, not a rate that a slow machine may miss (a busy CI
 * machine once served 956 pages in the 15 s where 1,000 were asked for).
 */
const MIN_STEPS = 10;

const openFiles = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe.skipIf(process.platform !== 'linux')('load', () => {
  let dataDir: string;
  let server: ServerProcess;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 's3g-load-'));
    // Every session signs up from 127.0.0.1: lift the per-address limit on open sign-ups.
    server = await spawnServer(dataDir, await freePort(), { SIGNUPS_PER_IP_PER_HOUR: String(SESSIONS) });
  });
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    `serves ${SESSIONS} sessions browsing and uploading (${MIN_STEPS} steps each, ${SECONDS} s at least) without an error or a leaked file handle`,
    async () => {
      const pid = server.child.pid as number;
      const clients: Client[] = [];
      for (let i = 0; i < SESSIONS; i += 20) {
        const batch = Array.from({ length: Math.min(20, SESSIONS - i) }, () => server.client());
        await Promise.all(batch.map((c, j) => signUp(c, `user${i + j}@example.com`)));
        clients.push(...batch);
      }
      const png = await makePng(64, 48);
      const baseline = openFiles(pid);
      const errors: string[] = [];
      const counts = { pages: 0, uploads: 0 };
      const until = Date.now() + SECONDS * 1000;

      async function session(client: Client, n: number) {
        let imageId: string | undefined;
        for (let step = 0; step < MIN_STEPS || Date.now() < until; step++) {
          try {
            if ((step + n) % 10 === 0) {
              const presign = await client.postJson('/uploads/presign', { name: `s${n}-${step}.png` });
              const policy = (await presign.json()) as Policy;
              const stored = await postToBucket(policy, png, 'image/png', 'x.png');
              if (stored.status !== 201) throw new Error(`bucket answered ${stored.status}`);
              const done = await client.postJson('/uploads/complete', { key: policy.key });
              if (done.status !== 200) throw new Error(`completion answered ${done.status}`);
              imageId = ((await done.json()) as { imageId: string }).imageId;
              counts.uploads++;
            } else {
              const path = imageId && step % 3 === 0 ? `/images/${imageId}` : step % 2 ? '/shared' : '/';
              const res = await client.get(path);
              await res.arrayBuffer();
              if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
              counts.pages++;
            }
          } catch (err) {
            errors.push(String(err));
          }
        }
      }
      await Promise.all(clients.map((c, n) => session(c, n)));

      console.log(
        `load: ${counts.pages} pages, ${counts.uploads} uploads, ${errors.length} errors in ${SECONDS} s`,
      );
      expect(errors.slice(0, 5)).toEqual([]);
      // Every session uploaded and browsed: each of its steps was answered as it should be.
      expect(counts.uploads).toBeGreaterThanOrEqual(SESSIONS);
      expect(counts.pages).toBeGreaterThanOrEqual(SESSIONS * (MIN_STEPS - 1));
      // Keep-alive sockets close after the server's idle timeout; then the count must come back down.
      await expect
        .poll(() => openFiles(pid), { timeout: 15_000, interval: 500 })
        .toBeLessThanOrEqual(baseline + 5);
      expect(server.errorLines()).toBe(0);
    },
    (SECONDS + 120) * 1000,
  );
});
