import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

/** The EXIF DateTimeOriginal every sample carries: a wall-clock time, with no time zone. */
const DATE_TAKEN = '2024:06:01 10:30:00';

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
    IFD2: { DateTimeOriginal: DATE_TAKEN },
    ...(opts.gps ? { IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } } : {}),
  });
  return img.toBuffer();
}

/** A PNG of about `bytes` bytes: random pixels, stored without compression. */
export function noisyPng(bytes: number): Promise<Buffer> {
  const side = Math.round(Math.sqrt(bytes / 3));
  return sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
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

type Rgb = { r: number; g: number; b: number; alpha?: number };

/** One colour, or two: `bottom` paints the lower half, so a test can tell which way a copy was turned. */
function picture(width: number, height: number, colour: Rgb, bottom?: Rgb) {
  const channels = colour.alpha === undefined ? (3 as const) : (4 as const);
  const img = sharp({ create: { width, height, channels, background: colour } });
  if (!bottom) return img;
  const half = Math.floor(height / 2);
  const lower = { create: { width, height: height - half, channels, background: bottom } };
  return img.composite([{ input: lower, top: half, left: 0 }]);
}

/**
 * A photo of one colour in a format sharp writes, with EXIF (taken DATE_TAKEN) and, if asked, an
 * orientation: the pixels are stored as given (width × height) and the orientation says how to turn
 * them. JPEG, WebP and TIFF keep it as an EXIF or TIFF tag, PNG in its eXIf chunk, AVIF as an irot
 * box (libvips writes one from the orientation). GIF carries neither. sharp writes no EXIF
 * into a TIFF: makeTiff writes one that has it.
 */
export async function makePhoto(
  format: 'jpeg' | 'png' | 'webp' | 'avif' | 'gif',
  width: number,
  height: number,
  opts: { orientation?: number; colour?: Rgb; bottom?: Rgb } = {},
) {
  let img = picture(width, height, opts.colour ?? { r: 200, g: 80, b: 40 }, opts.bottom);
  if (opts.orientation) img = img.withMetadata({ orientation: opts.orientation });
  img = img.withExifMerge({ IFD2: { DateTimeOriginal: DATE_TAKEN } });
  return img.toFormat(format, format === 'avif' ? { effort: 0 } : {}).toBuffer();
}

/**
 * An uncompressed RGB TIFF as a camera or scanner writes one: orientation in its own tags, the date
 * taken in an EXIF directory (tag 34665), the directories placed after the pixels, as libtiff does.
 */
export function makeTiff(
  width: number,
  height: number,
  opts: { orientation?: number; colour?: Rgb; bottom?: Rgb } = {},
) {
  const top = opts.colour ?? { r: 200, g: 80, b: 40 };
  const bottom = opts.bottom ?? top;
  const pixelBytes = width * height * 3;
  const tags: [tag: number, type: 3 | 4, count: number, value: number][] = [];
  const ifd0 = 8 + pixelBytes + (pixelBytes % 2); // directories start on a word boundary
  const entries = 12;
  const bitsPerSample = ifd0 + 2 + entries * 12 + 4;
  const exifIfd = bitsPerSample + 6;
  const date = exifIfd + 2 + 12 + 4;
  const file = Buffer.alloc(date + 20);
  file.write('II', 0, 'latin1');
  file.writeUInt16LE(42, 2);
  file.writeUInt32LE(ifd0, 4);
  for (let y = 0; y < height; y++) {
    const { r, g, b } = y < Math.floor(height / 2) ? top : bottom;
    for (let p = 8 + y * width * 3; p < 8 + (y + 1) * width * 3; p += 3) file.set([r, g, b], p);
  }
  tags.push(
    [256, 4, 1, width],
    [257, 4, 1, height],
    [258, 3, 3, bitsPerSample],
    [259, 3, 1, 1], // no compression
    [262, 3, 1, 2], // RGB
    [273, 4, 1, 8], // the one strip's offset
    [274, 3, 1, opts.orientation ?? 1],
    [277, 3, 1, 3],
    [278, 4, 1, height],
    [279, 4, 1, pixelBytes],
    [284, 3, 1, 1],
    [34665, 4, 1, exifIfd],
  );
  file.writeUInt16LE(entries, ifd0);
  for (const [i, [tag, type, count, value]] of tags.entries()) {
    const at = ifd0 + 2 + i * 12;
    file.writeUInt16LE(tag, at);
    file.writeUInt16LE(type, at + 2);
    file.writeUInt32LE(count, at + 4);
    if (type === 3 && count === 1) file.writeUInt16LE(value, at + 8);
    else file.writeUInt32LE(value, at + 8);
  }
  for (let i = 0; i < 3; i++) file.writeUInt16LE(8, bitsPerSample + i * 2);
  file.writeUInt16LE(1, exifIfd);
  file.writeUInt16LE(36867, exifIfd + 2); // DateTimeOriginal, ASCII, 20 bytes with its NUL
  file.writeUInt16LE(2, exifIfd + 4);
  file.writeUInt32LE(20, exifIfd + 6);
  file.writeUInt32LE(date, exifIfd + 10);
  file.write(DATE_TAKEN, date, 'latin1');
  return file;
}

/** An animated WebP: one frame of each colour, 100 ms apart, looping. */
export async function makeAnimatedWebp(width: number, height: number, colours: [number, number, number][]) {
  const gif = await makeAnimatedGif(width, height, colours);
  return sharp(gif, { animated: true }).webp({ lossless: true }).toBuffer();
}

/**
 * A decompression bomb: a PNG of 20000 × 20000 grey pixels (400 megapixels, 1.2 GB as RGB) that
 * weighs about 50 KB, written by hand because no encoder should be asked to hold that many pixels.
 */
export function makePngBomb(side = 20_000) {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([1, 0, 0, 0, 0], 8); // 1-bit greyscale, so the rows deflate from 50 MB, not 1.2 GB
  const row = side / 8 + 1; // a filter byte, then the pixels
  const rows = deflateSync(Buffer.alloc(row * side));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', rows),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Whether HEIC files can be made here (libheif's heif-enc); CI installs it, so there it must. */
export const canMakeHeic = existsSync('/usr/bin/heif-enc') || Boolean(process.env.CI);

/**
 * An iPhone-style HEIC photo of one colour, encoded by libheif's heif-enc (HEVC) from a JPEG whose
 * EXIF (taken 1 Jun 2024, 10:30) it carries over. With an orientation of 6 it is stored on its side
 * as an iPhone held upright stores it: an irot box turns it, and the EXIF says 6 as well (which HEIF
 * readers must ignore, or they would turn it twice).
 */
export async function makeHeic(
  width: number,
  height: number,
  rgb: { r: number; g: number; b: number },
  opts: { orientation?: 6; bottom?: Rgb } = {},
) {
  const dir = mkdtempSync(path.join(tmpdir(), 's3g-heic-'));
  try {
    const jpeg = path.join(dir, 'photo.jpg');
    const heic = path.join(dir, 'photo.heic');
    let source = picture(width, height, rgb, opts.bottom).jpeg({ quality: 95 });
    if (opts.orientation) source = source.withMetadata({ orientation: opts.orientation });
    source = source.withExifMerge({ IFD2: { DateTimeOriginal: DATE_TAKEN } });
    writeFileSync(jpeg, await source.toBuffer());
    await promisify(execFile)('heif-enc', ['-q', '90', '-o', heic, jpeg]);
    // heif-enc 1.15 copies the EXIF orientation but writes no irot box: add the one an iPhone writes.
    return opts.orientation ? withHeifRotation(readFileSync(heic), 3) : readFileSync(heic);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Adds an irot property (`quarterTurns` anticlockwise; 3 turns the picture as EXIF orientation 6
 * does) to a HEIF file's primary image: the irot box goes at the end of ipco, its index into the
 * primary image's ipma entry, and every offset into the file after the meta box moves by the bytes
 * added. Handles what heif-enc writes (ipma version 0 with 7-bit indices, iloc versions 0 to 2).
 */
function withHeifRotation(file: Buffer, quarterTurns: number): Buffer {
  const out = Buffer.from(file);
  const boxes = (start: number, end: number) => {
    const found = new Map<string, { at: number; size: number }>();
    for (let at = start; at < end; ) {
      const size = out.readUInt32BE(at);
      found.set(out.toString('latin1', at + 4, at + 8), { at, size });
      at += size;
    }
    return found;
  };
  const box = (within: Map<string, { at: number; size: number }>, type: string) => {
    const found = within.get(type);
    if (!found) throw new Error(`no ${type} box in the HEIF file`);
    return found;
  };
  const meta = box(boxes(0, out.length), 'meta');
  const inMeta = boxes(meta.at + 12, meta.at + meta.size);
  const iprp = box(inMeta, 'iprp');
  const inIprp = boxes(iprp.at + 8, iprp.at + iprp.size);
  const ipco = box(inIprp, 'ipco');
  const ipma = box(inIprp, 'ipma');
  const pitm = box(inMeta, 'pitm');
  const primary = out[pitm.at + 8] === 0 ? out.readUInt16BE(pitm.at + 12) : out.readUInt32BE(pitm.at + 12);
  const irotIndex = boxes(ipco.at + 8, ipco.at + ipco.size).size + 1;
  if (out[ipma.at + 8] !== 0 || (out[ipma.at + 11] ?? 0) & 1 || irotIndex > 127)
    throw new Error('an ipma this helper does not handle');
  const added = 10; // the irot box (9 bytes) and one association (1 byte)

  const iloc = box(inMeta, 'iloc');
  const version = out[iloc.at + 8] ?? 0;
  let at = iloc.at + 12;
  const offsetSize = (out[at] ?? 0) >> 4;
  const lengthSize = (out[at] ?? 0) & 15;
  const baseOffsetSize = (out[at + 1] ?? 0) >> 4;
  const indexSize = version > 0 ? (out[at + 1] ?? 0) & 15 : 0;
  at += 2;
  const count = version < 2 ? out.readUInt16BE(at) : out.readUInt32BE(at);
  at += version < 2 ? 2 : 4;
  const shift = (where: number, bytes: number) => {
    if (bytes === 4) out.writeUInt32BE(out.readUInt32BE(where) + added, where);
    else if (bytes === 8) out.writeBigUInt64BE(out.readBigUInt64BE(where) + BigInt(added), where);
  };
  for (let item = 0; item < count; item++) {
    at += version < 2 ? 2 : 4;
    const inFile = version === 0 || (out.readUInt16BE(at) & 15) === 0;
    if (version > 0) at += 2;
    at += 2; // data_reference_index
    if (inFile && baseOffsetSize) shift(at, baseOffsetSize);
    at += baseOffsetSize;
    const extents = out.readUInt16BE(at);
    at += 2;
    for (let extent = 0; extent < extents; extent++) {
      at += indexSize;
      if (inFile && !baseOffsetSize) shift(at, offsetSize);
      at += offsetSize + lengthSize;
    }
  }

  // The primary image's entry in ipma, to take one more association.
  let entry = ipma.at + 16;
  for (let i = out.readUInt32BE(ipma.at + 12); i > 0; i--) {
    if (out.readUInt16BE(entry) === primary) break;
    entry += 3 + (out[entry + 2] ?? 0);
  }
  if (out.readUInt16BE(entry) !== primary) throw new Error('the primary image has no ipma entry');
  const associations = out[entry + 2] ?? 0;
  out[entry + 2] = associations + 1;
  for (const grown of [meta, iprp]) out.writeUInt32BE(grown.size + added, grown.at);
  out.writeUInt32BE(ipco.size + 9, ipco.at);
  out.writeUInt32BE(ipma.size + 1, ipma.at);
  const irot = Buffer.from([0, 0, 0, 9, ...Buffer.from('irot'), quarterTurns]);
  const afterAssociations = entry + 3 + associations;
  const ipcoEnd = ipco.at + ipco.size;
  if (afterAssociations < ipcoEnd) throw new Error('ipma before ipco: not handled');
  return Buffer.concat([
    out.subarray(0, ipcoEnd),
    irot,
    out.subarray(ipcoEnd, afterAssociations),
    Buffer.from([0x80 | irotIndex]), // essential: a reader that cannot rotate must not show it
    out.subarray(afterAssociations),
  ]);
}

export const SVG = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>',
);
export const HTML = Buffer.from('<!DOCTYPE html><html><body><script>alert(1)</script></body></html>');
export const TEXT_AS_PNG = Buffer.from('just some text pretending to be a picture\n'.repeat(20));
