/**
 * Photo-like 12-megapixel JPEGs for the processing rows, made here so the bench downloads nothing.
 * Pure noise would not do: it makes 10 MB files that no camera writes, and encodes slower than a
 * photo. These have what photos have: a few hard edges (a skyline), smooth colour fields, texture
 * at several scales, and sensor grain, at quality 92 (3–5 MB, like a phone's). Every other one
 * carries EXIF orientation 6 (a phone held upright), so turning it upright is part of the work.
 */
import sharp from 'sharp';

const WIDTH = 4000;
const HEIGHT = 3000;
/** Texture at four scales: the grid a field of random values is drawn on, and its weight. */
const OCTAVES = [
  [8, 6, 0.5],
  [60, 45, 0.4],
  [500, 375, 0.25],
  [2000, 1500, 0.2],
] as const;

/** mulberry32: the same seed makes the same photo in every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random values on a coarse grid, enlarged smoothly to full size. */
function field(next: () => number, width: number, height: number, channels: 1 | 3): Promise<Buffer> {
  const values = Buffer.alloc(width * height * channels);
  for (let i = 0; i < values.length; i++) values[i] = Math.floor(next() * 256);
  return sharp(values, { raw: { width, height, channels } })
    .resize(WIDTH, HEIGHT, { kernel: 'cubic' })
    .raw()
    .toBuffer();
}

/** A horizon and some buildings against a sky, in greys: the hard edges of the picture. */
function skyline(next: () => number): Buffer {
  const horizon = 900 + next() * 1200;
  let ground = `M0 ${horizon}`;
  for (let x = 0; x <= WIDTH; x += 100) ground += ` L${x} ${Math.round(horizon + (next() - 0.5) * 300)}`;
  const buildings = Array.from({ length: 14 }, () => {
    const w = 100 + next() * 600;
    const h = 200 + next() * 1200;
    const grey = Math.floor(next() * 255);
    return `<rect x="${next() * WIDTH}" y="${horizon - h * next()}" width="${w}" height="${h}" fill="rgb(${grey},${grey},${grey})"/>`;
  });
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}">` +
      `<rect width="100%" height="100%" fill="rgb(200,200,200)"/>` +
      `<path d="${ground} L${WIDTH} ${HEIGHT} L0 ${HEIGHT} Z" fill="rgb(60,60,60)"/>${buildings.join('')}</svg>`,
  );
}

/** One photo: brightness from the skyline, the texture and grain; colour from a smooth tint. */
export async function photoLikeJpeg(seed: number): Promise<Buffer> {
  const next = random(seed);
  const tint = await field(next, 5, 4, 3);
  const textures = await Promise.all(OCTAVES.map(([w, h]) => field(next, w, h, 1)));
  const scene = await sharp(skyline(next)).greyscale().raw().toBuffer({ resolveWithObject: true });
  const sceneChannels = scene.info.channels;
  const pixels = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let p = 0; p < WIDTH * HEIGHT; p++) {
    let luma = ((scene.data[p * sceneChannels] as number) - 128) * 0.6 + (next() - 0.5) * 10;
    for (let o = 0; o < OCTAVES.length; o++) {
      luma += ((textures[o]?.[p] as number) - 128) * (OCTAVES[o]?.[2] as number);
    }
    for (let c = 0; c < 3; c++) {
      const v = 128 + luma + ((tint[p * 3 + c] as number) - 128) * 0.5;
      pixels[p * 3 + c] = Math.max(0, Math.min(255, v));
    }
  }
  return sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
    .jpeg({ quality: 92 })
    .withMetadata({ orientation: seed % 2 === 1 ? 6 : 1 })
    .toBuffer();
}

/** `count` distinct photos (seeds 1 to count). */
export async function photoLikeJpegs(count: number): Promise<Buffer[]> {
  const photos: Buffer[] = [];
  for (let seed = 1; seed <= count; seed++) photos.push(await photoLikeJpeg(seed));
  return photos;
}
