import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashBody } from '../src/disk/body-hashes.js';

const KiB = 1024;

/** Feeds `bytes` in pieces cut at `cuts` (offsets, any order), as a socket would deliver them. */
function feed(bytes: Buffer, cuts: number[], sha256: boolean) {
  const hashes = hashBody({ sha256 });
  const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort(
    (a, b) => a - b,
  );
  for (let i = 1; i < points.length; i++) hashes.update(bytes.subarray(points[i - 1], points[i]));
  return hashes.digest();
}

const expected = (bytes: Buffer) => ({
  md5: createHash('md5').update(bytes).digest('hex'),
  sha256: createHash('sha256').update(bytes).digest('hex'),
});

describe('upload hashing', () => {
  // Sizes around the batch the worker takes (512 KiB), where in-place and worker hashing meet.
  const sizes = [0, 1, 511 * KiB, 512 * KiB - 1, 512 * KiB, 512 * KiB + 1, 1024 * KiB, 1600 * KiB];
  const bodies = sizes.map((n) => randomBytes(n));

  it('gives the MD5 and SHA-256 of the bytes, however they were cut and whichever thread hashed them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: bodies.length - 1 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.boolean(),
        async (which, cuts, withSha) => {
          const bytes = bodies[which] as Buffer;
          const got = await feed(bytes, cuts, withSha);
          const want = expected(bytes);
          expect(got.md5.toString('hex')).toBe(want.md5);
          expect(got.sha256).toBe(withSha ? want.sha256 : undefined);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps bodies hashed at the same time apart, and a discarded body does not disturb the others', async () => {
    const large = bodies.slice(-3) as Buffer[];
    const hashers = large.map(() => hashBody({ sha256: true }));
    const abandoned = hashBody({ sha256: true });
    // Round-robin, 64 KiB at a time, so the worker sees the bodies' batches interleaved.
    for (let offset = 0; offset < 1600 * KiB; offset += 64 * KiB) {
      large.forEach((b, i) => {
        if (offset < b.length) hashers[i]?.update(b.subarray(offset, offset + 64 * KiB));
      });
      if (offset < 700 * KiB) abandoned.update(randomBytes(64 * KiB));
    }
    abandoned.discard();
    const got = await Promise.all(hashers.map((h) => h.digest()));
    got.forEach((g, i) => {
      const want = expected(large[i] as Buffer);
      expect(g.md5.toString('hex')).toBe(want.md5);
      expect(g.sha256).toBe(want.sha256);
    });
  });

  it('lets the process end by itself once the bodies are hashed (the idle worker holds nothing open)', () => {
    // A body over one batch goes to the worker; then nothing is left to do, so node must exit.
    const module = new URL('../src/disk/body-hashes.ts', import.meta.url).href;
    const script = `
      const { hashBody } = await import(${JSON.stringify(module)});
      const hashes = hashBody({ sha256: true });
      hashes.update(Buffer.alloc(3 * 512 * 1024, 7));
      console.log((await hashes.digest()).md5.toString('hex'));
    `;
    const dir = mkdtempSync(path.join(os.tmpdir(), 's3-store-exit-'));
    const file = path.join(dir, 'hash-and-end.mts');
    writeFileSync(file, script);
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 20_000 });
    rmSync(dir, { recursive: true, force: true });
    expect(run.signal).toBeNull(); // not killed at the timeout
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(
      createHash('md5')
        .update(Buffer.alloc(3 * 512 * 1024, 7))
        .digest('hex'),
    );
  });
});
