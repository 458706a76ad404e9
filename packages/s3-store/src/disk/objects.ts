import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { badRequest, S3Error } from '../errors.js';
import { hashBody } from './body-hashes.js';
import { FLUSH_EVERY_BYTES, fileWriter, syncDir } from './durable-writer.js';
import { KeyIndex } from './key-index.js';
import {
  HEADER_BYTES,
  OBJECT_DIR,
  OBJECT_FILE,
  type ObjectMeta,
  objectPath,
  readHeader,
  writeHeader,
} from './object-file.js';

export { byteOrder } from './key-index.js';
export type { ObjectMeta } from './object-file.js';

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
  /** the ETag the object gets, when it is not its body's MD5 (a multipart upload's) */
  etag?: string;
  /**
   * false skips the fsyncs, for bulk loading into a store that is not serving (a benchmark's
   * seed): a crash then may lose objects, never corrupt them, since the rename still publishes them.
   */
  durable?: boolean;
}

/** An object written or deleted, as the store tells an app that asked to hear of changes. */
export type StoreChange =
  | { type: 'created'; key: string; etag: string; size: number }
  | { type: 'removed'; key: string };

/** A body received into a temp file and checked (see DiskObjects.receive). */
export interface Received {
  /** the temp file: published by renaming it, once sealed */
  path: string;
  size: number;
  /** the body's MD5, hex */
  md5: string;
  /** Writes the header and closes the file (with an fsync when durable). */
  seal(meta: ObjectMeta, durable: boolean): Promise<void>;
  /** Closes and removes the file. */
  discard(): Promise<void>;
}

export interface OpenObject {
  meta: ObjectMeta;
  read(start: number, endInclusive: number): Readable;
  close(): Promise<void>;
}

/**
 * The objects of one bucket on disk. Each appears by one atomic rename of a fsynced temp file: a
 * crash or a cut connection never leaves a partial object visible. Writes of one key take turns.
 */
export class DiskObjects {
  private readonly keys = new KeyIndex();
  private readonly tmpDir: string;
  private readonly turns = new Map<string, Promise<void>>();
  /** Settles once every object on disk is in the index; only listing has to wait for it. */
  indexed: Promise<void> = Promise.resolve();
  /** Told of every object written (by any operation) or deleted, once the change is on disk. */
  onChange: ((change: StoreChange) => void) | undefined;

  constructor(private readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
  }

  /**
   * Removes temp files a crash left behind, then builds the key index in the background: reads and
   * writes of single keys go straight to their files, so a large store starts serving at once.
   */
  async init(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    for (const name of await fs.readdir(this.tmpDir))
      await fs.rm(path.join(this.tmpDir, name), { force: true });
    this.indexed = this.keys.build((found) => this.scan(found));
  }

  private async scan(
    found: (key: string, entry: { size: number; etag: string; lastModified: number }) => void,
  ) {
    const dirs = (await fs.readdir(this.root)).filter((d) => OBJECT_DIR.test(d));
    const readOne = async (file: string) => {
      let handle: fs.FileHandle | undefined;
      try {
        handle = await fs.open(file, 'r');
        const meta = await readHeader(handle);
        found(meta.key, { size: meta.size, etag: meta.etag, lastModified: meta.lastModified });
      } catch {
        // Unreadable, or deleted while we looked: skipped, not fatal; the rest of the store still serves.
      } finally {
        await handle?.close();
      }
    };
    // A few directories at a time, a few files each: enough to keep the disk busy, few descriptors.
    await pool(dirs, 4, async (dir) => {
      const names = (await fs.readdir(path.join(this.root, dir))).filter((n) => OBJECT_FILE.test(n));
      await pool(names, 16, (name) => readOne(path.join(this.root, dir, name)));
    });
  }

  /**
   * Streams `body` (through `o.decode`, if any) into a temp file, checks it, and publishes it as
   * `key` (its ETag the body's MD5, or `o.etag`).
   */
  async write(key: string, body: Readable, o: WriteOptions): Promise<ObjectMeta> {
    const received = await this.receive(body, o);
    const meta: ObjectMeta = {
      key,
      size: received.size,
      etag: o.etag ?? received.md5,
      contentType: o.contentType,
      lastModified: Math.floor(Date.now() / 1000) * 1000,
      metadata: o.metadata,
    };
    try {
      await received.seal(meta, o.durable !== false);
    } catch (err) {
      await received.discard();
      throw err;
    }
    await this.commit(key, received.path, meta, o.durable !== false).catch(async (err: unknown) => {
      await fs.rm(received.path, { force: true });
      throw err;
    });
    return meta;
  }

  /**
   * Streams `body` (through `o.decode`, if any) into a temp file with room for a header, and checks
   * its size and digests: the file is the caller's to seal with a header and publish, or discard.
   * Every stream is connected to the one pipeline before this first waits for anything, so an error
   * in any of them is this call's rejection, never an unhandled 'error' event. A refused body
   * leaves nothing behind.
   */
  async receive(body: Readable, o: Omit<WriteOptions, 'contentType' | 'metadata'>): Promise<Received> {
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
      let isClosed = false;
      return {
        path: tmp,
        size,
        md5: digests.md5.toString('hex'),
        async seal(meta, durable) {
          await writeHeader(handle, meta);
          if (durable) await handle.sync();
          isClosed = true;
          await handle.close();
        },
        async discard() {
          if (!isClosed) await handle.close().catch(() => undefined);
          isClosed = true;
          await fs.rm(tmp, { force: true });
        },
      };
    } catch (err) {
      hashes.discard();
      const handle = await opening.catch(() => undefined);
      await handle?.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Copies the object `source` names to `key` in the kernel (copy_file_range, or a reflink where the
   * file system has them): no byte passes through JavaScript and none is hashed again, since the
   * ETag of the same bytes is the same. The copy carries `meta(source)` as its header. Answers null
   * when the file copied is not the version `source` describes (a replace won the race, or a
   * delete): the caller looks again.
   */
  async copy(
    source: ObjectMeta,
    key: string,
    meta: (source: ObjectMeta) => Omit<ObjectMeta, 'key' | 'lastModified'>,
  ): Promise<ObjectMeta | null> {
    const tmp = path.join(this.tmpDir, randomUUID());
    let handle: fs.FileHandle | undefined;
    let isPublished = false;
    try {
      const from = objectPath(this.root, source.key);
      try {
        await fs.copyFile(from, tmp, fs.constants.COPYFILE_FICLONE);
      } catch (err) {
        // The source deleted meanwhile: the caller looks again. (Not a missing temp dir: that is the disk's fault.)
        const isGone = await fs.access(from).then(
          () => false,
          () => true,
        );
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && isGone) return null;
        throw err;
      }
      handle = await fs.open(tmp, 'r+');
      const copied = await readHeader(handle);
      const isSame =
        copied.key === source.key &&
        copied.etag === source.etag &&
        copied.size === source.size &&
        copied.lastModified === source.lastModified;
      if (!isSame) return null;
      const written: ObjectMeta = {
        ...meta(copied),
        key,
        lastModified: Math.floor(Date.now() / 1000) * 1000,
      };
      await writeHeader(handle, written);
      await handle.sync();
      await handle.close();
      handle = undefined;
      await this.commit(key, tmp, written, true);
      isPublished = true;
      return written;
    } finally {
      await handle?.close().catch(() => undefined);
      if (!isPublished) await fs.rm(tmp, { force: true });
    }
  }

  /**
   * Publishes one object by rename and indexes it. Writes of the same key take turns, so the index
   * names the file that won on disk; different keys go side by side.
   */
  private async commit(key: string, tmp: string, meta: ObjectMeta, durable: boolean): Promise<void> {
    const target = objectPath(this.root, key);
    await this.inTurn(key, async () => {
      try {
        await fs.rename(tmp, target);
      } catch (err) {
        // The first object in each of the 256 directories creates it; asking every time costs a syscall.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.rename(tmp, target);
      }
      this.keys.set(key, { size: meta.size, etag: meta.etag, lastModified: meta.lastModified });
    });
    // The rename is what readers see, durable or not; making it survive a power cut is this
    // writer's wait alone, before it answers, so the directory fsyncs of concurrent uploads overlap.
    if (durable) await syncDir(path.dirname(target));
    this.onChange?.({ type: 'created', key, etag: meta.etag, size: meta.size });
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

  /** Opens the object and reads its header from the same file, so a concurrent replace cannot mix versions. */
  async open(key: string): Promise<OpenObject | null> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(objectPath(this.root, key), 'r');
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

  async delete(key: string): Promise<void> {
    let existed = true;
    await this.inTurn(key, async () => {
      await fs.unlink(objectPath(this.root, key)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        existed = false;
      });
      this.keys.delete(key);
    });
    if (existed) this.onChange?.({ type: 'removed', key });
  }

  /** Keys in UTF-8 byte order, as S3 lists them. Call after `indexed` settles. */
  list(o: { prefix: string; startAfter: string; maxKeys: number; delimiter: string }) {
    return this.keys.list(o);
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
