/**
 * Where a renditions job spends its time, one image at a time (no contention between images):
 * each step of a job timed on its own, beside the two pipelines of sharp alone, the median of
 * REPEATS runs per photo. The steps repeat what src/jobs/renditions.ts and makeRenditions
 * (src/services/thumbnails.ts) do, with the same options, so a step that costs more than it
 * should shows here. `npx tsx scripts/bench/renditions-steps.ts` (a diagnosis, not a bench row).
 */
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';
import { makeRenditions } from '../../src/services/thumbnails.js';
import { startTestStore } from '../../test/support/store.js';
import { photoLikeJpeg } from './photos.js';
import { fmt, median } from './table.js';

const REPEATS = Number(process.env.STEPS_REPEATS ?? 7);
const inside = (px: number) => ({ width: px, height: px, fit: 'inside', withoutEnlargement: true }) as const;
const options = { limitInputPixels: 100_000_000, failOn: 'error' } as const;

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3g-bench-steps-'));
  const store = await startTestStore();
  try {
    // Seed 1 carries EXIF orientation 6 (turned upright while decoding), seed 2 none.
    for (const seed of [1, 2]) {
      const photo = await photoLikeJpeg(seed);
      const file = path.join(dir, `photo-${seed}.jpg`);
      writeFileSync(file, photo);
      await store.storage.put(`originals/${seed}`, photo, 'image/jpeg');
      const { data: raw, info } = await sharp(file, { ...options, sequentialRead: true })
        .autoOrient()
        .resize(inside(1600))
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      const pixels = { raw: { width: info.width, height: info.height, channels: info.channels } };
      const display = await sharp(raw, pixels).webp({ quality: 82 }).toBuffer();
      const thumb = await sharp(raw, pixels).resize(inside(400)).webp({ quality: 72 }).toBuffer();
      const steps: [string, () => Promise<unknown>][] = [
        [
          'sharp alone: 1600 px WebP from the file',
          () => sharp(file).autoOrient().resize(inside(1600)).webp({ quality: 82 }).toBuffer(),
        ],
        [
          'sharp alone: 400 px WebP from the file',
          () => sharp(file).autoOrient().resize(inside(400)).webp({ quality: 72 }).toBuffer(),
        ],
        [
          'ours: GET the original to a temp file',
          async () => {
            await pipeline(
              await store.storage.getStream(`originals/${seed}`),
              createWriteStream(path.join(dir, 'got')),
            );
          },
        ],
        ['ours: metadata (header)', () => sharp(file, options).metadata()],
        [
          'ours: decode, upright, 1600 px raw',
          () =>
            sharp(file, { ...options, sequentialRead: true })
              .autoOrient()
              .resize(inside(1600))
              .raw({ depth: 'uchar' })
              .toBuffer(),
        ],
        ['ours: 1600 px WebP from raw', () => sharp(raw, pixels).webp({ quality: 82 }).toBuffer()],
        [
          'ours: 400 px WebP from raw',
          () => sharp(raw, pixels).resize(inside(400)).webp({ quality: 72 }).toBuffer(),
        ],
        [
          'ours: ThumbHash from raw',
          async () => {
            const small = await sharp(raw, pixels)
              .resize(inside(100))
              .ensureAlpha()
              .raw()
              .toBuffer({ resolveWithObject: true });
            rgbaToThumbHash(small.info.width, small.info.height, small.data);
          },
        ],
        [
          'ours: PUT both copies',
          () =>
            Promise.all([
              store.storage.put(`thumbs/${seed}`, thumb, 'image/webp'),
              store.storage.put(`display/${seed}`, display, 'image/webp'),
            ]),
        ],
        ['ours: makeRenditions(file), whole', () => makeRenditions(file, 'image/jpeg')],
      ];
      console.log(
        `\nphoto ${seed} (${fmt(photo.length / 1024 ** 2)} MiB, orientation ${seed % 2 === 1 ? 6 : 1}): ms, median of ${REPEATS}`,
      );
      for (const [name, step] of steps) {
        const times: number[] = [];
        for (let i = 0; i < REPEATS; i++) {
          const t0 = performance.now();
          await step();
          times.push(performance.now() - t0);
        }
        console.log(`  ${name.padEnd(44)}${fmt(median(times), 0).padStart(6)}`);
      }
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The store's hashing worker keeps the event loop alive once it has hashed a large body.
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
