import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { byteOrder, DiskObjects } from '../src/disk/objects.js';

const put = (disk: DiskObjects, key: string) =>
  disk.write(key, Readable.from([Buffer.from(key)]), {
    contentType: 'text/plain',
    metadata: {},
    maxBytes: 1000,
  });

describe('the embedded store index on start-up', () => {
  const root = mkdtempSync(path.join(tmpdir(), 's3g-index-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('serves single keys at once and lets writes and deletes during the background scan win', async () => {
    const first = new DiskObjects(root);
    await first.init();
    const keys = Array.from({ length: 1500 }, (_, i) => `users/u/k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50)
      await Promise.all(keys.slice(i, i + 50).map((k) => put(first, k)));

    // A named pipe where an object file would be: opening it to read waits for a writer, so the scan
    // cannot finish until the test opens the other end.
    const fifo = path.join(root, 'ff', `ff${'0'.repeat(62)}.obj`);
    mkdirSync(path.dirname(fifo), { recursive: true });
    execFileSync('mkfifo', [fifo]);
    let isReleased = false;
    // Succeeds only once the scan is waiting on the pipe (ENXIO before): then its open returns.
    const releaseScan = () =>
      vi.waitFor(
        () => {
          if (!isReleased) closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
          isReleased = true;
        },
        { timeout: 20_000, interval: 10 },
      );

    try {
      const second = new DiskObjects(root);
      await second.init(); // would never return if it waited for the scan
      let isScanned = false;
      void second.indexed.then(() => {
        isScanned = true;
      });
      const opened = await second.open('users/u/k00007');
      expect(opened?.meta.size).toBe('users/u/k00007'.length);
      await opened?.close();
      await second.delete('users/u/k01499');
      await put(second, 'users/u/new');
      // Real I/O has happened since init(): the scan's callback had every chance to run, yet it is held.
      expect(isScanned).toBe(false);

      await releaseScan();
      await second.indexed;
      expect(isScanned).toBe(true);
      const listed = second.list({ prefix: 'users/u/', startAfter: '', maxKeys: 5000, delimiter: '' });
      const names = listed.contents.map((c) => c.key);
      expect(names).toHaveLength(1500);
      expect(names).toContain('users/u/new');
      expect(names).not.toContain('users/u/k01499');
      expect(names).toEqual([...names].sort());
    } finally {
      await releaseScan();
    }
  });
});

describe('key order', () => {
  const sign = (n: number) => Math.sign(n);
  const keyChars = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 12 }),
    // what differs between UTF-16 and UTF-8 order: U+E000-U+FFFF beside characters above U+FFFF
    fc
      .array(fc.constantFrom('a', '\u00e9', '\ud7ff', '\ue000', '\uffff', '\u{10000}', '\u{1f600}'), {
        maxLength: 6,
      })
      .map((parts) => parts.join('')),
  );

  it('sorts keys as their UTF-8 bytes sort, as S3 lists them', () => {
    fc.assert(
      fc.property(keyChars, keyChars, (a, b) => {
        expect(sign(byteOrder(a, b))).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
    expect(byteOrder('\uffff', '\u{1f600}')).toBeLessThan(0);
    expect('\uffff' < '\u{1f600}').toBe(false);
  });
});
