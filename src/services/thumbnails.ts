import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Sharp } from 'sharp';
import { HEIF_TYPES } from '../image-types.js';
import { type CameraDetails, cameraDetailsOf } from './exif.js';
import { decodeHeif } from './heif.js';
import { tiffDateTaken } from './tiff.js';

/** `load` once, on the first call; later calls get the same promise. */
const once = <T>(load: () => Promise<T>): (() => Promise<T>) => {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
};

// sharp (libvips), file-type and exif-reader load on the first upload, not at start-up: they cost
// a third of the start-up time and tens of MB that a server only browsing never needs.
const load = {
  // libvips' operation cache keeps recent images' pixels for reuse: a worker never decodes one twice,
  // so it only held memory (tens of MB per worker).
  sharp: once(() =>
    import('sharp').then((m) => {
      m.default.cache(false);
      return m.default;
    }),
  ),
  fileType: once(() => import('file-type')),
  exif: once(() => import('exif-reader').then((m) => m.default)),
  thumbhash: once(() => import('thumbhash')),
};

/**
 * Loads them now, in the background, when an upload is about to start: sharp's native library
 * holds the event loop for 50-80 ms as it loads, which would otherwise land on the completions
 * answered beside the first job. While the file travels to the bucket nobody waits on this process.
 */
export function preloadImageModules(): void {
  void Promise.all([load.sharp(), load.fileType(), load.exif(), load.thumbhash()]).catch(() => {
    // Nothing to do here: the first job that needs the module meets the same error and reports it.
  });
}

/** file-type, loaded once (sniff.ts reads types with it). */
export const loadFileType = load.fileType;

/** file-type reads at most this many bytes from the start of a file. */
export const SNIFF_BYTES = 4100;
const THUMB_PX = 400;
const DISPLAY_PX = 1600;
/** The display copy's size for an image of this size: it fits DISPLAY_PX, never enlarged. */
export function displaySize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, DISPLAY_PX / Math.max(width, height, 1));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}
/**
 * ThumbHash accepts up to 100 × 100 pixels but keeps only the lowest frequencies (at most 7 a side),
 * which 32 pixels a side hold as well: encoding those costs the main thread a tenth as much.
 */
const PLACEHOLDER_PX = 32;
/** Refuses decompression bombs: a small file that would decode to gigabytes of pixels. */
const MAX_INPUT_PIXELS = 100_000_000;
/**
 * libheif decodes the whole picture into WebAssembly memory (4 bytes a pixel), which never shrinks
 * again: 50 megapixels (200 MB) holds the 48-megapixel photos of recent iPhones and no more.
 */
const MAX_HEIF_PIXELS = 50_000_000;

export interface Renditions {
  thumb: Buffer;
  display: Buffer;
  width: number;
  height: number;
  /** EXIF's DateTimeOriginal: the camera's wall clock, stored as if it were UTC (EXIF has no zone) */
  takenAt: number | null;
  /** camera, lens and exposure, when the file tells them */
  camera: CameraDetails | null;
  /** A ThumbHash (about 25 bytes, base64) the browser paints while the thumbnail loads. */
  placeholder: string;
}

/**
 * Thumbnail and display copies as WebP, turned upright, from the original (a file, so it is never
 * whole in memory, or its bytes). The original is decoded once: straight to display size (libvips
 * shrinks a JPEG while decoding it), and both copies are made from those pixels. sharp drops all
 * metadata (GPS included) unless asked to keep it, so neither copy carries any. HEIC and HEIF,
 * which sharp's libvips cannot decode, are decoded by libheif (see heif.ts), upright already.
 */
export async function makeRenditions(original: string | Buffer, contentType: string): Promise<Renditions> {
  const sharp = await load.sharp();
  if (HEIF_TYPES.has(contentType)) {
    const bytes = typeof original === 'string' ? await readFile(original) : original;
    const image = await decodeHeif(bytes, MAX_HEIF_PIXELS);
    const pixels = sharp(image.rgba, { raw: { width: image.width, height: image.height, channels: 4 } });
    // libvips cannot decode HEVC, but it reads the container's header, EXIF included.
    const { exif } = await sharp(bytes)
      .metadata()
      .catch(() => ({ exif: undefined }));
    const copies = await renderBoth(pixels);
    return { ...copies, width: image.width, height: image.height, ...(await readExif(exif)) };
  }
  const options = { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' } as const;
  const meta = await sharp(original, options).metadata(); // the header only
  const { width, height } = meta.autoOrient;
  const copies = await renderBoth(sharp(original, { ...options, sequentialRead: true }).autoOrient());
  // An animated GIF or WebP keeps moving in its display copy (animated WebP); its thumbnail is the
  // first frame. Frames are decoded again for it: only animations pay that. The pages of a TIFF (a
  // scanned document) or the images of an AVIF are not frames: those show their first.
  const isAnimation = (meta.format === 'gif' || meta.format === 'webp') && (meta.pages ?? 1) > 1;
  if (isAnimation) copies.display = await animatedDisplay(original).catch(() => copies.display);
  // libvips gives no EXIF for a TIFF, whose own directories hold it: those are read for the date.
  const exif =
    meta.format === 'tiff'
      ? { takenAt: await tiffDateTaken(original), camera: null }
      : await readExif(meta.exif);
  return { ...copies, width, height, ...exif };
}

async function animatedDisplay(original: string | Buffer): Promise<Buffer> {
  const sharp = await load.sharp();
  return sharp(original, { animated: true, limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
    .resize({ width: DISPLAY_PX, height: DISPLAY_PX, fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 82 })
    .toBuffer();
}

/** Temp dirs for decoded pixels start so; a worker removes those a killed process left. */
export const PIXELS_TEMP_PREFIX = 's3g-pixels-';

/**
 * Both copies and the placeholder from one decode: display-size pixels first, then each copy from
 * them, one step after another. Each sharp step holds one of libuv's four threads, which the
 * embedded store's file work (uploads, copies) needs too: a worker that held three at once (both
 * encodes and the placeholder side by side) made uploads and completions wait behind images. The
 * cores stay busy through the workers, one job each.
 *
 * The pixels between steps go to libvips' own uncompressed format (`.v`, which it maps back into
 * memory) in a temp dir, not into Buffers: a Buffer's memory is freed only when V8 collects the
 * Buffer, and while libvips keeps the cores busy that can be several images later. With 5.8 MB of
 * display-size pixels an image, the peak above idle with two images in flight fell from 99 to 63 MB
 * (docs/benchmarks.md). On a full disk libvips' write fails with "No space left on device", which
 * the job retries like any full disk.
 */
async function renderBoth(input: Sharp): Promise<{ thumb: Buffer; display: Buffer; placeholder: string }> {
  const sharp = await load.sharp();
  const dir = await mkdtemp(path.join(tmpdir(), PIXELS_TEMP_PREFIX));
  try {
    const shown = path.join(dir, 'display.v');
    await input
      .resize({ width: DISPLAY_PX, height: DISPLAY_PX, fit: 'inside', withoutEnlargement: true })
      .toFile(shown);
    const display = await sharp(shown).webp({ quality: 82 }).toBuffer();
    const small = path.join(dir, 'thumb.v');
    await sharp(shown)
      .resize({ width: THUMB_PX, height: THUMB_PX, fit: 'inside', withoutEnlargement: true })
      .toFile(small);
    const thumb = await sharp(small).webp({ quality: 72 }).toBuffer();
    // From the thumbnail's pixels, as the placeholder stands in for the thumbnail.
    const placeholder = await thumbHash(sharp(small));
    return { thumb, display, placeholder };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function thumbHash(pixels: Sharp): Promise<string> {
  const { rgbaToThumbHash } = await load.thumbhash();
  const { data, info } = await pixels
    .resize({ width: PLACEHOLDER_PX, height: PLACEHOLDER_PX, fit: 'inside', withoutEnlargement: true })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString('base64');
}

/** The date taken and the camera's settings from an EXIF block; nulls when it is absent or unreadable. */
async function readExif(
  exif: Buffer | undefined,
): Promise<{ takenAt: number | null; camera: CameraDetails | null }> {
  if (!exif) return { takenAt: null, camera: null };
  const exifReader = await load.exif();
  try {
    const tags = exifReader(exif);
    const taken = tags.Photo?.DateTimeOriginal;
    return {
      takenAt: taken instanceof Date && !Number.isNaN(taken.getTime()) ? taken.getTime() : null,
      camera: cameraDetailsOf(tags),
    };
  } catch {
    return { takenAt: null, camera: null };
  }
}

/** The type of an image's share copy: PNG, GIF and WebP stay what they are, photos become JPEG. */
export const shareCopyType = (contentType: string): string =>
  ['image/png', 'image/gif', 'image/webp'].includes(contentType) ? contentType : 'image/jpeg';

/**
 * A share link's download when it does not give the original: a full-size copy without its
 * metadata (sharp keeps none unless asked: no location, camera or comments), turned upright, of
 * the type shareCopyType names (an animation keeps moving).
 */
export async function makeShareCopy(original: string, contentType: string): Promise<Buffer> {
  const sharp = await load.sharp();
  if (HEIF_TYPES.has(contentType)) {
    const image = await decodeHeif(await readFile(original), MAX_HEIF_PIXELS);
    const pixels = sharp(image.rgba, { raw: { width: image.width, height: image.height, channels: 4 } });
    return pixels.jpeg({ quality: 92 }).toBuffer();
  }
  const animated = contentType === 'image/gif' || contentType === 'image/webp';
  const input = sharp(original, {
    animated,
    limitInputPixels: MAX_INPUT_PIXELS,
    failOn: 'error',
  }).autoOrient();
  switch (shareCopyType(contentType)) {
    case 'image/png':
      return input.png().toBuffer();
    case 'image/gif':
      return input.gif().toBuffer();
    case 'image/webp':
      return input.webp({ quality: 90 }).toBuffer();
    default:
      return input.jpeg({ quality: 92 }).toBuffer();
  }
}
