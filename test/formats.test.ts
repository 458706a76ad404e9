import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import sharp from 'sharp';
import { thumbHashToApproximateAspectRatio, thumbHashToRGBA } from 'thumbhash';
import { describe, expect, it } from 'vitest';
import { IMAGE_THREAD_NICE } from '../src/jobs/thread-priority.js';
import { makeRenditions, type Renditions } from '../src/services/thumbnails.js';
import {
  canMakeHeic,
  makeAnimatedGif,
  makeAnimatedWebp,
  makeHeic,
  makePhoto,
  makePngBomb,
  makeTiff,
} from './support/images.js';

/**
 * The samples were taken at 10:30 on 1 Jun 2024. EXIF names no time zone (OffsetTimeOriginal is not
 * read), so the wall-clock time is stored as if it were UTC, and shown as written.
 */
const TAKEN_AT = Date.UTC(2024, 5, 1, 10, 30);
const RED = { r: 220, g: 40, b: 40 };
const BLUE = { r: 40, g: 60, b: 220 };

async function webpSize(copy: Buffer) {
  const meta = await sharp(copy).metadata();
  expect(meta.format).toBe('webp');
  return [meta.width, meta.height];
}

/** The mean colour of a square of a copy: `side` says which edge it sits on. */
async function colourAt(copy: Buffer, side: 'left' | 'right') {
  const { width = 0, height = 0 } = await sharp(copy).metadata();
  const square = Math.floor(width / 4);
  const left = side === 'left' ? 0 : width - square;
  const top = Math.floor((height - square) / 2);
  // stats() would describe the whole copy, not the extract: count the square's pixels here.
  const { data, info } = await sharp(copy)
    .extract({ left, top, width: square, height: square })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const sums = [0, 0, 0];
  for (let p = 0; p < data.length; p += info.channels)
    for (let c = 0; c < 3; c++) (sums[c] as number) += data[p + c] ?? 0;
  return sums.map((sum) => Math.round(sum / (square * square)));
}

function expectColour(found: number[], expected: { r: number; g: number; b: number }, tolerance = 12) {
  const want = [expected.r, expected.g, expected.b];
  for (const [i, value] of found.entries())
    expect(Math.abs(value - (want[i] as number)), `${found} vs ${want}`).toBeLessThan(tolerance);
}

/** The placeholder decoded: its size, and the mean colour of its opaque pixels. */
function decodePlaceholder(renditions: Renditions) {
  const hash = Buffer.from(renditions.placeholder, 'base64');
  const { w, h, rgba } = thumbHashToRGBA(hash);
  const sums = [0, 0, 0, 0];
  for (let p = 0; p < rgba.length; p += 4)
    for (let c = 0; c < 4; c++) (sums[c] as number) += rgba[p + c] ?? 0;
  return {
    bytes: hash.length,
    w,
    h,
    mean: sums.map((s) => s / (w * h)),
    aspect: thumbHashToApproximateAspectRatio(hash),
  };
}

// Each stored 1800 × 900, red above blue, with orientation 6 (turn a quarter clockwise to view):
// upright it is 900 × 1800, red on the right, blue on the left.
const sideways: { name: string; type: string; skip?: boolean; make: () => Promise<Buffer> }[] = [
  { name: 'JPEG', type: 'image/jpeg', make: () => makePhoto('jpeg', 1800, 900, sidewaysOpts) },
  { name: 'PNG (EXIF in eXIf)', type: 'image/png', make: () => makePhoto('png', 1800, 900, sidewaysOpts) },
  { name: 'WebP', type: 'image/webp', make: () => makePhoto('webp', 1800, 900, sidewaysOpts) },
  { name: 'AVIF (irot)', type: 'image/avif', make: () => makePhoto('avif', 1800, 900, sidewaysOpts) },
  { name: 'TIFF', type: 'image/tiff', make: async () => makeTiff(1800, 900, sidewaysOpts) },
  {
    name: 'HEIC (irot, and EXIF orientation 6 as iPhones write)',
    type: 'image/heic',
    skip: !canMakeHeic,
    make: () => makeHeic(1800, 900, RED, { orientation: 6, bottom: BLUE }),
  },
];
const sidewaysOpts = { orientation: 6, colour: RED, bottom: BLUE };

describe('formats', () => {
  for (const { name, type, skip, make } of sideways) {
    it.skipIf(skip)(`turns a sideways ${name} upright and reads when it was taken`, async () => {
      const renditions = await makeRenditions(await make(), type);
      expect([renditions.width, renditions.height]).toEqual([900, 1800]);
      expect(await webpSize(renditions.display)).toEqual([800, 1600]);
      expect(await webpSize(renditions.thumb)).toEqual([200, 400]);
      for (const copy of [renditions.display, renditions.thumb]) {
        expectColour(await colourAt(copy, 'right'), RED);
        expectColour(await colourAt(copy, 'left'), BLUE);
      }
      expect(renditions.takenAt).toBe(TAKEN_AT);
      // A portrait placeholder, half red and half blue on average.
      const placeholder = decodePlaceholder(renditions);
      expect(placeholder.aspect).toBeLessThan(0.75);
      expect(placeholder.h).toBeGreaterThan(placeholder.w);
    });
  }

  it('keeps a GIF moving in its display copy, the first frame as thumbnail; a GIF has no EXIF', async () => {
    const gif = await makeAnimatedGif(900, 500, [
      [220, 40, 40],
      [40, 220, 40],
      [40, 40, 220],
    ]);
    const renditions = await makeRenditions(gif, 'image/gif');
    expect([renditions.width, renditions.height]).toEqual([900, 500]);
    expect(await sharp(renditions.display).metadata()).toMatchObject({
      format: 'webp',
      pages: 3,
      width: 900,
    });
    expect(await sharp(renditions.thumb).metadata()).toMatchObject({
      format: 'webp',
      width: 400,
      height: 222,
    });
    expect((await sharp(renditions.thumb).metadata()).pages ?? 1).toBe(1);
    expectColour(await colourAt(renditions.thumb, 'left'), RED);
    expect(renditions.takenAt).toBeNull();
    expectColour(decodePlaceholder(renditions).mean.slice(0, 3), RED, 25);
  });

  it('keeps an animated WebP moving, and takes a still one', async () => {
    const moving = await makeRenditions(
      await makeAnimatedWebp(600, 400, [
        [40, 60, 220],
        [220, 40, 40],
      ]),
      'image/webp',
    );
    expect(await sharp(moving.display).metadata()).toMatchObject({ format: 'webp', pages: 2, width: 600 });
    expect((await sharp(moving.thumb).metadata()).pages ?? 1).toBe(1);
    expectColour(await colourAt(moving.thumb, 'left'), BLUE);

    const still = await makeRenditions(await makePhoto('webp', 2400, 1200, { colour: RED }), 'image/webp');
    expect([still.width, still.height]).toEqual([2400, 1200]);
    expect(await webpSize(still.display)).toEqual([1600, 800]);
    expect(await webpSize(still.thumb)).toEqual([400, 200]);
  });

  it('shows the first page of a TIFF of several, not a slide show of them', async () => {
    const pages = await makeAnimatedGif(300, 200, [
      [220, 40, 40],
      [40, 60, 220],
    ]);
    const tiff = await sharp(pages, { animated: true }).tiff().toBuffer();
    expect((await sharp(tiff).metadata()).pages).toBe(2);
    const renditions = await makeRenditions(tiff, 'image/tiff');
    expect((await sharp(renditions.display).metadata()).pages ?? 1).toBe(1);
    expectColour(await colourAt(renditions.display, 'left'), RED);
  });

  it('keeps the colours of a 16-bit PNG and the transparency of one with alpha', async () => {
    const deep = await sharp({ create: { width: 500, height: 500, channels: 3, background: RED } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(deep).metadata()).depth).toBe('ushort');
    const fromDeep = await makeRenditions(deep, 'image/png');
    expectColour(await colourAt(fromDeep.thumb, 'left'), RED, 4);

    const glass = await makePhoto('png', 500, 300, { colour: { ...BLUE, alpha: 0.5 } });
    const fromGlass = await makeRenditions(glass, 'image/png');
    for (const copy of [fromGlass.thumb, fromGlass.display]) {
      const { channels } = await sharp(copy).stats();
      expect(channels).toHaveLength(4);
      expect(Math.abs((channels[3]?.mean ?? 0) - 128)).toBeLessThan(3);
    }
    expect(decodePlaceholder(fromGlass).mean[3]).toBeLessThan(200);
  });

  it('makes a placeholder of about 25 bytes, in the colour and shape of the image', async () => {
    const renditions = await makeRenditions(
      await makePhoto('jpeg', 1200, 800, { colour: RED }),
      'image/jpeg',
    );
    const placeholder = decodePlaceholder(renditions);
    expect(placeholder.bytes).toBeGreaterThanOrEqual(20);
    expect(placeholder.bytes).toBeLessThanOrEqual(35);
    expect(renditions.placeholder).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(placeholder.aspect).toBeGreaterThan(1.3);
    expectColour(placeholder.mean.slice(0, 3), RED, 15);
    expect(placeholder.mean[3]).toBeGreaterThan(250);
  });

  it.skipIf(!canMakeHeic || process.platform !== 'linux')(
    'decodes HEIC on a thread behind requests, as libvips does, and leaves the others as they were',
    async () => {
      const own = os.getPriority();
      const niceOf = () =>
        readdirSync('/proc/self/task').flatMap((tid) => {
          try {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
            const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
            return name.startsWith('libvips')
              ? []
              : [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
          } catch {
            return []; // ended meanwhile
          }
        });
      await makeRenditions(await makeHeic(600, 400, RED), 'image/heic');
      const lowered = niceOf().filter((nice) => nice === Math.min(19, own + IMAGE_THREAD_NICE));
      expect(lowered.length).toBe(1); // the decoding worker's thread
      expect(niceOf().filter((nice) => nice === own).length).toBeGreaterThan(1); // the main thread and the rest
    },
  );

  describe('refuses, never hangs on', () => {
    it('a truncated JPEG', { timeout: 10_000 }, async () => {
      const jpeg = await makePhoto('jpeg', 1200, 800);
      await expect(
        makeRenditions(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), 'image/jpeg'),
      ).rejects.toThrow();
    });

    it('garbage after a PNG signature', { timeout: 10_000 }, async () => {
      const garbage = Buffer.alloc(5000, 0x5a);
      const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), garbage]);
      await expect(makeRenditions(png, 'image/png')).rejects.toThrow();
    });

    it('a PNG whose pixel data stops short', { timeout: 10_000 }, async () => {
      const png = await makePhoto('png', 1200, 800);
      await expect(
        makeRenditions(png.subarray(0, Math.floor(png.length * 0.6)), 'image/png'),
      ).rejects.toThrow();
    });

    it.skipIf(!canMakeHeic)('a truncated HEIC', { timeout: 10_000 }, async () => {
      const heic = await makeHeic(600, 400, RED);
      await expect(
        makeRenditions(heic.subarray(0, Math.floor(heic.length * 0.7)), 'image/heic'),
      ).rejects.toThrow();
    });

    it('a TIFF whose date taken is impossible gives no date (not one years later)', async () => {
      const tiff = makeTiff(300, 200);
      const at = tiff.indexOf('2024:06:01 10:30:00');
      expect(at).toBeGreaterThan(0);
      tiff.write('2020:99:99 99:99:99', at, 'latin1');
      expect((await makeRenditions(tiff, 'image/tiff')).takenAt).toBeNull();
    });

    it('a decompression bomb: a 50 KB PNG of 400 megapixels', { timeout: 10_000 }, async () => {
      const bomb = makePngBomb();
      expect(bomb.length).toBeLessThan(200_000);
      expect(await sharp(bomb, { limitInputPixels: false }).metadata()).toMatchObject({
        width: 20_000,
        height: 20_000,
      });
      await expect(makeRenditions(bomb, 'image/png')).rejects.toThrow(/pixel limit/i);
    });
  });
});
