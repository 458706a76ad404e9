import { open } from 'node:fs/promises';

/** Up to `length` bytes from `offset` of the original (fewer at its end). */
type Read = (offset: number, length: number) => Promise<Buffer>;

const EXIF_IFD = 34665;
const DATE_TIME_ORIGINAL = 36867;
const ASCII = 2;

/**
 * When a TIFF was taken, from the DateTimeOriginal in its EXIF directory, or null. libvips hands
 * over no EXIF for a TIFF because a TIFF is itself EXIF's structure: its first directory points to
 * the EXIF one. Only those few bytes are read, where they lie (often after the pixels, at the end).
 * Read as exif-reader reads other formats' dates: the wall-clock time, taken to be UTC.
 */
export async function tiffDateTaken(original: string | Buffer): Promise<number | null> {
  if (typeof original !== 'string') return dateIn(async (at, length) => original.subarray(at, at + length));
  const file = await open(original);
  try {
    return await dateIn(async (at, length) => {
      const bytes = Buffer.alloc(length);
      const { bytesRead } = await file.read(bytes, 0, length, at);
      return bytes.subarray(0, bytesRead);
    });
  } finally {
    await file.close();
  }
}

async function dateIn(read: Read): Promise<number | null> {
  const header = await read(0, 8);
  const order = header.toString('latin1', 0, 2);
  if (header.length < 8 || (order !== 'II' && order !== 'MM')) return null;
  const u16 = (b: Buffer, at: number) => (order === 'II' ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (b: Buffer, at: number) => (order === 'II' ? b.readUInt32LE(at) : b.readUInt32BE(at));
  if (u16(header, 2) !== 42) return null; // BigTIFF (43) has wider offsets: left without a date
  /** The entry for `tag` in the directory at `offset`: its type, count and value (or value's offset). */
  const entry = async (offset: number, tag: number) => {
    const count = await read(offset, 2);
    if (count.length < 2) return null;
    const entries = await read(offset + 2, u16(count, 0) * 12);
    for (let at = 0; at + 12 <= entries.length; at += 12)
      if (u16(entries, at) === tag)
        return { type: u16(entries, at + 2), count: u32(entries, at + 4), value: u32(entries, at + 8) };
    return null;
  };
  const exif = await entry(u32(header, 4), EXIF_IFD);
  const taken = exif && (await entry(exif.value, DATE_TIME_ORIGINAL));
  if (!taken || taken.type !== ASCII || taken.count < 20) return null;
  const text = (await read(taken.value, 19)).toString('latin1');
  const parts = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text)?.slice(1).map(Number);
  if (!parts) return null;
  const [year = 0, month = 1, day = 1, hours = 0, minutes = 0, seconds = 0] = parts;
  const time = Date.UTC(year, month - 1, day, hours, minutes, seconds);
  // Date.UTC rolls impossible fields over (month 99 is years later): a date that does not read
  // back as written is no date.
  const back = new Date(time);
  const isExact =
    back.getUTCFullYear() === year &&
    back.getUTCMonth() === month - 1 &&
    back.getUTCDate() === day &&
    back.getUTCHours() === hours &&
    back.getUTCMinutes() === minutes &&
    back.getUTCSeconds() === seconds;
  return isExact ? time : null;
}
