import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';

/** Real image files made on the spot, so no binary fixtures live in the repo. */
export async function makeJpeg(
  width = 640,
  height = 480,
  opts: { orientation?: number; gps?: boolean } = {},
) {
  let img = sharp({
    create: { width, height, channels: 3, background: { r: 200, g: 80, b: 40 } },
  }).jpeg({ quality: 80 });
  if (opts.orientation) img = img.withMetadata({ orientation: opts.orientation });
  img = img.withExifMerge({
    IFD2: { DateTimeOriginal: '2024:06:01 10:30:00' },
    ...(opts.gps ? { IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } } : {}),
  });
  return img.toBuffer();
}

export async function makePng(width = 300, height = 200) {
  return sharp({ create: { width, height, channels: 4, background: { r: 20, g: 120, b: 220, alpha: 1 } } })
    .png()
    .toBuffer();
}

/** An animated GIF: one frame of each colour, 100 ms apart, looping. */
export async function makeAnimatedGif(width: number, height: number, colours: [number, number, number][]) {
  const frame = width * height * 4;
  const pixels = Buffer.alloc(frame * colours.length);
  for (const [i, [r, g, b]] of colours.entries())
    for (let p = i * frame; p < (i + 1) * frame; p += 4) pixels.set([r, g, b, 255], p);
  return sharp(pixels, { raw: { width, height: height * colours.length, channels: 4, pageHeight: height } })
    .gif({ delay: colours.map(() => 100), loop: 0 })
    .toBuffer();
}

/** Whether HEIC files can be made here (libheif's heif-enc); CI installs it, so there it must. */
export const canMakeHeic = existsSync('/usr/bin/heif-enc') || Boolean(process.env.CI);

/**
 * An iPhone-style HEIC photo of one colour, encoded by libheif's heif-enc (HEVC) from a JPEG whose
 * EXIF (taken 1 Jun 2024, 10:30) it carries over.
 */
export async function makeHeic(width: number, height: number, rgb: { r: number; g: number; b: number }) {
  const dir = mkdtempSync(path.join(tmpdir(), 's3g-heic-'));
  try {
    const jpeg = path.join(dir, 'photo.jpg');
    const heic = path.join(dir, 'photo.heic');
    const source = sharp({ create: { width, height, channels: 3, background: rgb } })
      .jpeg({ quality: 95 })
      .withExifMerge({ IFD2: { DateTimeOriginal: '2024:06:01 10:30:00' } });
    writeFileSync(jpeg, await source.toBuffer());
    await promisify(execFile)('heif-enc', ['-q', '90', '-o', heic, jpeg]);
    return readFileSync(heic);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const SVG = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>',
);
export const HTML = Buffer.from('<!DOCTYPE html><html><body><script>alert(1)</script></body></html>');
export const TEXT_AS_PNG = Buffer.from('just some text pretending to be a picture\n'.repeat(20));
