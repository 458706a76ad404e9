import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { hashBody } from './body-hashes.js';
import { badRequest, S3Error } from './s3-errors.js';

/**
 * Objects as files named by the SHA-256 of their key, so no key can name a path. Each file holds a
 * fixed-size JSON header (key, type, ETag, metadata) and then the bytes, and appears by one atomic
 * rename of a fsynced temp file: a crash or a cut connection never leaves a partial object visible.
 */
const HEADER_BYTES = 8192;
// The socket keeps reading while a write is on the disk: without room for a few of its 64 KB chunks,
// every chunk waits for the previous write to finish.
const WRITE_BUFFER_BYTES = 1024 * 1024;
// Big enough that small images never flush early, small enough that a 20 MB upload flushes as it goes.
const FLUSH_EVERY_BYTES = 4 * 1024 * 1024;
const MAGIC = 0x53334731; // "S3G1"

export interface ObjectMeta {
  key: string;
  size: number;
  /** hex MD5, unquoted */
  etag: string;
  contentType: string;
  lastModified: number;
  metadata: Record<string, string>;
}

export interface WriteOptions {
  contentType: string;
  metadata: Record<string, string>;
  minBytes?: number;
  maxBytes: number;
  /** hex SHA-256 the body must have (x-amz-content-sha256) */
  sha256?: string;
  /** base64 CRC32 the body must have (x-amz-checksum-crc32), or a getter for one sent in a trailer */
  crc32?: string | (() => string | undefined);
  /** base64 MD5 the body must have (Content-MD5) */
  md5?: string;
  /** a transform the body goes through first, e.g. the aws-chunked decoder */
  decode?: Transform;
  /**
   * false skips the fsyncs, for bulk loading into a store that is not serving (the benchmark's
   * seed): a crash then may lose objects, never corrupt them, since the rename still publishes them.
   */
  durable?: boolean;
}

export interface OpenObject {
  meta: ObjectMeta;
  read(start: number, endInclusive: number): Readable;
  close(): Promise<void>;
}

const HIGH_UNITS = /[\ud800-\uffff]/;

/**
 * Compares keys as their UTF-8 bytes compare, which is how S3 lists them, without encoding them:
 * sorting 100,000 keys makes millions of comparisons. UTF-16 order agrees with UTF-8 order except
 * between a surrogate (part of a character above U+FFFF) and U+E000-U+FFFF, so only strings that
 * both hold such units need the slow path.
 */
export function byteOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (HIGH_UNITS.test(a) && HIGH_UNITS.test(b)) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.charCodeAt(i);
      const y = b.charCodeAt(i);
      if (x !== y) return codePointRank(x) - codePointRank(y);
    }
    return a.length - b.length;
  }
  return a < b ? -1 : 1;
}

/** Moves surrogates above U+E000-U+FFFF, where the characters they encode sort. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

export class DiskObjects {
  private readonly index = new Map<string, { size: number; etag: string; lastModified: number }>();
  private sorted: string[] = [];
  private readonly tmpDir: string;
  private readonly turns = new Map<string, Promise<void>>();

  constructor(private readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Keys written or deleted while the index was being built: what they did wins over the scan. */
  private readonly touchedDuringScan = new Set<string>();
  private isScanning = false;
  /** Settles once every object on disk is in the index; only listing has to wait for it. */
  indexed: Promise<void> = Promise.resolve();

  /**
   * Removes temp files a crash left behind, then builds the key index in the background: reads and
   * writes of single keys go straight to their files, so a large store starts serving at once.
   */
  async init(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    for (const name of await fs.readdir(this.tmpDir))
      await fs.rm(path.join(this.tmpDir, name), { force: true });
    this.isScanning = true;
    this.indexed = this.scan().finally(() => {
      this.isScanning = false;
      this.touchedDuringScan.clear();
    });
  }

  private async scan(): Promise<void> {
    const dirs = (await fs.readdir(this.root)).filter((d) => /^[0-9a-f]{2}$/.test(d));
    const readOne = async (file: string) => {
      let handle: fs.FileHandle | undefined;
      try {
        handle = await fs.open(file, 'r');
        const meta = await readHeader(handle);
        if (!this.touchedDuringScan.has(meta.key))
          this.index.set(meta.key, { size: meta.size, etag: meta.etag, lastModified: meta.lastModified });
      } catch {
        // Unreadable, or deleted while we looked: skipped, not fatal; the rest of the store still serves.
      } finally {
        await handle?.close();
      }
    };
    // A few directories at a time, a few files each: enough to keep the disk busy, few descriptors.
    await pool(dirs, 4, async (dir) => {
      const names = (await fs.readdir(path.join(this.root, dir))).filter((n) => n.endsWith('.obj'));
      await pool(names, 16, (name) => readOne(path.join(this.root, dir, name)));
    });
    this.sorted = [...this.index.keys()].sort(byteOrder);
  }

  private fileFor(key: string): string {
    const hash = createHash('sha256').update(key).digest('hex');
    return path.join(this.root, hash.slice(0, 2), `${hash}.obj`);
  }

  /**
   * Streams `body` (through `o.decode`, if any) into a temp file, checks it, and publishes it. Every
   * stream is connected to the one pipeline before this first waits for anything, so an error in any
   * of them is this call's rejection, never an unhandled 'error' event.
   */
  async write(key: string, body: Readable, o: WriteOptions): Promise<ObjectMeta> {
    const tmp = path.join(this.tmpDir, randomUUID());
    const hashes = hashBody({ sha256: o.sha256 !== undefined });
    let crc = 0;
    let size = 0;
    // The cleanup below waits for this open, so it can never run ahead of it and leave a file behind.
    const opening = fs.open(tmp, 'w');
    const streaming = pipeline([
      body,
      ...(o.decode ? [o.decode] : []),
      fileWriter(
        opening,
        HEADER_BYTES,
        (chunk) => {
          size += chunk.length;
          if (size > o.maxBytes) {
            throw new S3Error(
              400,
              'EntityTooLarge',
              'Your proposed upload exceeds the maximum allowed size',
              {
                MaxSizeAllowed: o.maxBytes,
              },
            );
          }
          hashes.update(chunk);
          if (o.crc32 !== undefined) crc = zlib.crc32(chunk, crc);
        },
        o.durable === false ? null : FLUSH_EVERY_BYTES,
      ),
    ]);
    let isClosed = false;
    try {
      await streaming;
      const handle = await opening;
      if (size < (o.minBytes ?? 0)) {
        throw new S3Error(
          400,
          'EntityTooSmall',
          'Your proposed upload is smaller than the minimum allowed size',
          {
            ProposedSize: size,
            MinSizeAllowed: o.minBytes ?? 0,
          },
        );
      }
      const digests = await hashes.digest();
      if (o.sha256 && digests.sha256 !== o.sha256) {
        throw badRequest(
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
      }
      const crcExpected = typeof o.crc32 === 'function' ? o.crc32() : o.crc32;
      if (crcExpected !== undefined) {
        const crcBytes = Buffer.alloc(4);
        crcBytes.writeUInt32BE(crc >>> 0);
        if (crcBytes.toString('base64') !== crcExpected) {
          throw badRequest('BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
        }
      }
      if (o.md5 !== undefined && digests.md5.toString('base64') !== o.md5) {
        throw badRequest('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
      const meta: ObjectMeta = {
        key,
        size,
        etag: digests.md5.toString('hex'),
        contentType: o.contentType,
        lastModified: Math.floor(Date.now() / 1000) * 1000,
        metadata: o.metadata,
      };
      await writeHeader(handle, meta);
      if (o.durable !== false) await handle.sync();
      isClosed = true;
      await handle.close();
      await this.commit(key, tmp, meta, o.durable !== false);
      return meta;
    } catch (err) {
      hashes.discard();
      const handle = await opening.catch(() => undefined);
      if (!isClosed) await handle?.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Publishes one object by rename and indexes it. Writes of the same key take turns, so the index
   * names the file that won on disk; different keys go side by side.
   */
  private async commit(key: string, tmp: string, meta: ObjectMeta, durable: boolean): Promise<void> {
    const target = this.fileFor(key);
    await this.inTurn(key, async () => {
      try {
        await fs.rename(tmp, target);
      } catch (err) {
        // The first object in each of the 256 directories creates it; asking every time costs a syscall.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.rename(tmp, target);
      }
      if (this.isScanning) this.touchedDuringScan.add(key);
      if (!this.index.has(key)) this.insertSorted(key);
      this.index.set(key, { size: meta.size, etag: meta.etag, lastModified: meta.lastModified });
    });
    // The rename is what readers see, durable or not; making it survive a power cut is this
    // writer's wait alone, before it answers, so the directory fsyncs of concurrent uploads overlap.
    if (durable) await syncDir(path.dirname(target));
  }

  /** Runs changes to one key one at a time, in the order they were asked for; a failure fails only its own caller. */
  private inTurn(key: string, work: () => Promise<void>): Promise<void> {
    const next = (this.turns.get(key) ?? Promise.resolve()).then(work, work);
    const settled = next.catch(() => undefined);
    this.turns.set(key, settled);
    void settled.then(() => {
      if (this.turns.get(key) === settled) this.turns.delete(key);
    });
    return next;
  }

  /** Where key is, or would go, in the sorted keys. */
  private position(key: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byteOrder(this.sorted[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insertSorted(key: string): void {
    this.sorted.splice(this.position(key), 0, key);
  }

  /** Opens the object and reads its header from the same file, so a concurrent replace cannot mix versions. */
  async open(key: string): Promise<OpenObject | null> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.fileFor(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const meta = await readHeader(handle);
      if (meta.key !== key) {
        await handle.close();
        return null;
      }
      return {
        meta,
        read: (start, end) =>
          createReadStream('', {
            fd: handle,
            start: HEADER_BYTES + start,
            end: HEADER_BYTES + end,
            autoClose: false,
          }),
        close: () => handle.close(),
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  delete(key: string): Promise<void> {
    return this.inTurn(key, async () => {
      await fs.rm(this.fileFor(key), { force: true });
      if (this.isScanning) this.touchedDuringScan.add(key);
      if (this.index.delete(key)) {
        const i = this.position(key);
        if (this.sorted[i] === key) this.sorted.splice(i, 1);
      }
    });
  }

  /** Keys in UTF-8 byte order, as S3 lists them. Call after `indexed` settles. */
  list(o: { prefix: string; startAfter: string; maxKeys: number; delimiter: string }) {
    let lo = 0;
    let hi = this.sorted.length;
    const from = byteOrder(o.prefix, o.startAfter) > 0 ? o.prefix : o.startAfter;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byteOrder(this.sorted[mid] as string, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    const contents: { key: string; size: number; etag: string; lastModified: number }[] = [];
    const prefixes: string[] = [];
    let last = '';
    let isTruncated = false;
    for (let i = lo; i < this.sorted.length; i++) {
      const key = this.sorted[i] as string;
      if (key === o.startAfter) continue;
      if (!key.startsWith(o.prefix)) break;
      if (contents.length + prefixes.length >= o.maxKeys) {
        isTruncated = true;
        break;
      }
      const cut = o.delimiter ? key.indexOf(o.delimiter, o.prefix.length) : -1;
      if (cut >= 0) {
        const common = key.slice(0, cut + o.delimiter.length);
        if (prefixes.at(-1) !== common) prefixes.push(common);
        // Skip the rest of this common prefix.
        while (i + 1 < this.sorted.length && (this.sorted[i + 1] as string).startsWith(common)) i++;
        last = this.sorted[i] as string;
        continue;
      }
      const entry = this.index.get(key);
      if (entry) contents.push({ key, ...entry });
      last = key;
    }
    return { contents, prefixes, isTruncated, last };
  }
}

/**
 * Writes a body into an open file from `start` on, looking at each chunk first (`inspect` may throw
 * to refuse it), and leaves the file open for the header that follows. Chunks that queued while a
 * write was on the disk go down in one writev. With `flushEveryBytes`, the disk starts on what has
 * arrived while the rest is still on the wire, so the fsync at the end has little left to do; the
 * stream finishes only once that flush has.
 */
function fileWriter(
  opening: Promise<fs.FileHandle>,
  start: number,
  inspect: (chunk: Buffer) => void,
  flushEveryBytes: number | null,
): Writable {
  let position = start;
  let unflushed = 0;
  let flushing: Promise<void> | null = null;
  let flushError: Error | null = null;
  let handle: fs.FileHandle;
  return new Writable({
    highWaterMark: WRITE_BUFFER_BYTES,
    // Writes wait for the open; a failed open fails the pipeline.
    construct(done) {
      opening.then((h) => {
        handle = h;
        done();
      }, done);
    },
    writev(chunks, done) {
      if (flushError) return done(flushError);
      let buffers: Buffer[];
      try {
        buffers = chunks.map(({ chunk }) => {
          inspect(chunk as Buffer);
          return chunk as Buffer;
        });
      } catch (err) {
        done(err as Error);
        return;
      }
      writeAll(handle, buffers, position).then((written) => {
        position += written;
        unflushed += written;
        if (flushEveryBytes !== null && unflushed >= flushEveryBytes && !flushing) {
          unflushed = 0;
          flushing = handle.datasync().then(
            () => {
              flushing = null;
            },
            (err: Error) => {
              flushError = err;
              flushing = null;
            },
          );
        }
        done();
      }, done);
    },
    final(done) {
      void (flushing ?? Promise.resolve()).then(() => done(flushError));
    },
  });
}

/** writev may write less than asked (a signal, a full disk); what is left is written again. */
async function writeAll(handle: fs.FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  const rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, position + total);
    if (bytesWritten === 0) throw new Error('the disk took none of the bytes written to it');
    total += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) skip -= (rest.shift() as Buffer).length;
    if (skip > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  }
  return total;
}

async function writeHeader(handle: fs.FileHandle, meta: ObjectMeta): Promise<void> {
  const json = Buffer.from(JSON.stringify(meta));
  if (json.length + 8 > HEADER_BYTES)
    throw badRequest('MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size.');
  const header = Buffer.alloc(8);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(json.length, 4);
  await handle.write(Buffer.concat([header, json]), 0, json.length + 8, 0);
}

/** Most headers are a few hundred bytes: read that much, and the rest only when there is more. */
const USUAL_HEADER_BYTES = 1024;

async function readHeader(handle: fs.FileHandle): Promise<ObjectMeta> {
  let buf = Buffer.alloc(USUAL_HEADER_BYTES);
  const { bytesRead } = await handle.read(buf, 0, USUAL_HEADER_BYTES, 0);
  if (bytesRead < 8 || buf.readUInt32BE(0) !== MAGIC) throw new Error('not an object file');
  const len = buf.readUInt32BE(4);
  if (len > HEADER_BYTES - 8) throw new Error('not an object file');
  if (8 + len > USUAL_HEADER_BYTES) {
    buf = Buffer.alloc(8 + len);
    await handle.read(buf, 0, 8 + len, 0);
  }
  return JSON.parse(buf.subarray(8, 8 + len).toString()) as ObjectMeta;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Runs work over items with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(runners);
}
