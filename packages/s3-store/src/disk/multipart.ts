import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { S3Error } from '../errors.js';
import { syncDir } from './durable-writer.js';
import { byteOrder } from './key-index.js';
import { HEADER_BYTES, type ObjectMeta, readHeader } from './object-file.js';
import type { DiskObjects, WriteOptions } from './objects.js';

/** What CreateMultipartUpload was given: it becomes the object's at completion. */
export interface UploadInfo {
  uploadId: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  /** when it was created, ms */
  initiated: number;
}

export interface PartInfo {
  partNumber: number;
  /** the part's MD5, hex */
  etag: string;
  size: number;
  lastModified: number;
}

/** The smallest part but the last (S3's 5 MiB). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;
const UPLOAD_ID = /^[A-Za-z0-9_-]{32}$/;
const PART_FILE = /^(\d{1,5})\.part$/;
const INFO_FILE = 'upload.json';
/** How long, and for how many uploads, a Complete repeated is answered as the first was. */
const RECENT_MS = 10 * 60 * 1000;
const MAX_RECENT = 1000;

const noSuchUpload = (uploadId: string) =>
  new S3Error(
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    { UploadId: uploadId },
  );

/**
 * Multipart uploads on disk, beside the objects: a directory per upload holding what it was
 * created with and one file per part (the object file format: a header, then the bytes), each
 * published by one rename, so a part sent again replaces the earlier one whole. Completion streams
 * the listed parts into one object through the objects' own write (checked, durable, one rename),
 * then removes the directory.
 */
export class MultipartUploads {
  private readonly dir: string;
  /** Completions running, by upload: a second request for the same one gets the same answer. */
  private readonly completing = new Map<string, Promise<ObjectMeta>>();
  /**
   * Completions of the last few minutes, by upload: a client that retries a Complete whose answer it
   * lost (a cut connection) is answered the same, not NoSuchUpload.
   */
  private readonly completed = new Map<string, { meta: ObjectMeta; at: number }>();

  constructor(
    root: string,
    private readonly disk: DiskObjects,
  ) {
    this.dir = path.join(root, 'multipart');
  }

  private uploadDir(uploadId: string): string {
    return path.join(this.dir, uploadId);
  }

  async create(key: string, o: { contentType: string; metadata: Record<string, string> }): Promise<string> {
    const uploadId = randomBytes(24).toString('base64url');
    const info: UploadInfo = { uploadId, key, ...o, initiated: Date.now() };
    const dir = this.uploadDir(uploadId);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `${INFO_FILE}.tmp`);
    await fs.writeFile(tmp, JSON.stringify(info));
    await fs.rename(tmp, path.join(dir, INFO_FILE));
    await syncDir(dir);
    return uploadId;
  }

  /** The upload, if it exists and is for this key; NoSuchUpload otherwise. */
  async get(uploadId: string, key: string): Promise<UploadInfo> {
    const info = await this.read(uploadId);
    if (!info || info.key !== key) throw noSuchUpload(uploadId);
    return info;
  }

  private async read(uploadId: string): Promise<UploadInfo | null> {
    if (!UPLOAD_ID.test(uploadId)) return null;
    try {
      return JSON.parse(
        await fs.readFile(path.join(this.uploadDir(uploadId), INFO_FILE), 'utf8'),
      ) as UploadInfo;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Receives one part and publishes it, replacing one sent before under its number. */
  async writePart(
    uploadId: string,
    key: string,
    partNumber: number,
    body: Readable,
    o: Omit<WriteOptions, 'contentType' | 'metadata'>,
  ): Promise<PartInfo> {
    await this.get(uploadId, key);
    const received = await this.disk.receive(body, o);
    const part: PartInfo = {
      partNumber,
      etag: received.md5,
      size: received.size,
      lastModified: Math.floor(Date.now() / 1000) * 1000,
    };
    try {
      await received.seal(
        {
          key: `${uploadId}/${partNumber}`,
          size: part.size,
          etag: part.etag,
          contentType: '',
          lastModified: part.lastModified,
          metadata: {},
        },
        true,
      );
      // Aborted or completed while it was on its way: the part has nowhere to go.
      if (!(await this.read(uploadId))) throw noSuchUpload(uploadId);
      await fs.rename(received.path, path.join(this.uploadDir(uploadId), `${partNumber}.part`));
    } catch (err) {
      await received.discard();
      // The directory went between the look and the rename: a part can be left in a removed one's place.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw noSuchUpload(uploadId);
      throw err;
    }
    return part;
  }

  /** The upload's parts, by number. */
  async parts(uploadId: string, key: string): Promise<PartInfo[]> {
    await this.get(uploadId, key);
    const dir = this.uploadDir(uploadId);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw noSuchUpload(uploadId);
      throw err;
    }
    const parts: PartInfo[] = [];
    for (const name of names) {
      const number = PART_FILE.exec(name)?.[1];
      if (number === undefined) continue;
      const meta = await this.partMeta(path.join(dir, name));
      if (meta)
        parts.push({
          partNumber: Number(number),
          etag: meta.etag,
          size: meta.size,
          lastModified: meta.lastModified,
        });
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  private async partMeta(file: string): Promise<ObjectMeta | null> {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(file, 'r');
      return await readHeader(handle);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    } finally {
      await handle?.close();
    }
  }

  /**
   * Joins `chosen` (already checked against the upload's parts) into the object, with S3's
   * multipart ETag, and removes the upload. A completion of the same upload already running is
   * joined, not repeated.
   */
  complete(info: UploadInfo, chosen: PartInfo[]): Promise<ObjectMeta> {
    const running = this.completing.get(info.uploadId);
    if (running !== undefined) return running;
    const work = this.join(info, chosen).finally(() => this.completing.delete(info.uploadId));
    this.completing.set(info.uploadId, work);
    void work.then(
      (meta) => this.remember(info.uploadId, meta),
      () => undefined,
    );
    return work;
  }

  /** The object an upload of `key` became in the last ten minutes, if it did. */
  completedAs(uploadId: string, key: string): ObjectMeta | null {
    const done = this.completed.get(uploadId);
    return done && done.meta.key === key && done.at > Date.now() - RECENT_MS ? done.meta : null;
  }

  private remember(uploadId: string, meta: ObjectMeta): void {
    this.completed.set(uploadId, { meta, at: Date.now() });
    // The oldest go first (a Map keeps insertion order): a bounded memory of recent answers.
    for (const [id, done] of this.completed) {
      if (this.completed.size <= MAX_RECENT && done.at > Date.now() - RECENT_MS) break;
      this.completed.delete(id);
    }
  }

  private async join(info: UploadInfo, chosen: PartInfo[]): Promise<ObjectMeta> {
    const dir = this.uploadDir(info.uploadId);
    const md5s = Buffer.concat(chosen.map((p) => Buffer.from(p.etag, 'hex')));
    const etag = `${createHash('md5').update(md5s).digest('hex')}-${chosen.length}`;
    // Every part is opened (and checked to be the one listed) before a byte is joined: a part sent
    // again meanwhile replaces the file by a rename, never what these handles read.
    const handles: fs.FileHandle[] = [];
    try {
      for (const part of chosen) {
        const handle = await fs.open(path.join(dir, `${part.partNumber}.part`), 'r').catch((err: unknown) => {
          throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? noSuchUpload(info.uploadId) : err;
        });
        handles.push(handle);
        const meta = await readHeader(handle);
        if (meta.etag !== part.etag || meta.size !== part.size) {
          throw new S3Error(
            409,
            'OperationAborted',
            'A part was sent again while the upload was being completed. Complete it again.',
          );
        }
      }
      const body = Readable.from(
        (async function* () {
          for (const handle of handles)
            yield* createReadStream('', { fd: handle, start: HEADER_BYTES, autoClose: false });
        })(),
      );
      const meta = await this.disk.write(info.key, body, {
        contentType: info.contentType,
        metadata: info.metadata,
        maxBytes: Number.MAX_SAFE_INTEGER,
        minBytes: chosen.reduce((sum, p) => sum + p.size, 0),
        etag,
      });
      await this.remove(info.uploadId);
      return meta;
    } finally {
      await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
    }
  }

  /** Removes the upload and its parts; one being completed is let finish (then it is gone anyway). */
  async abort(uploadId: string, key: string): Promise<void> {
    await this.completing.get(uploadId)?.catch(() => undefined);
    await this.get(uploadId, key);
    await this.remove(uploadId);
  }

  private async remove(uploadId: string): Promise<void> {
    await fs.rm(this.uploadDir(uploadId), { recursive: true, force: true });
  }

  /** The directories under multipart/: one per upload (none before the first). */
  private async uploadIds(): Promise<string[]> {
    try {
      return await fs.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Every upload in progress, by key and then by when it was created. */
  async list(): Promise<UploadInfo[]> {
    const uploads: UploadInfo[] = [];
    for (const id of await this.uploadIds()) {
      const info = await this.read(id).catch(() => null);
      if (info) uploads.push(info);
    }
    // As S3 lists them: by key (UTF-8 byte order), then by when each was created.
    return uploads.sort(
      (a, b) => byteOrder(a.key, b.key) || a.initiated - b.initiated || (a.uploadId < b.uploadId ? -1 : 1),
    );
  }

  /** Aborts the uploads created before `before` (ms), and removes directories left half-made. */
  async abortStale(before: number): Promise<string[]> {
    const aborted: string[] = [];
    for (const id of await this.uploadIds()) {
      if (this.completing.has(id)) continue;
      const info = await this.read(id).catch(() => null);
      const stat = await fs.stat(this.uploadDir(id)).catch(() => null);
      const created = info?.initiated ?? stat?.mtimeMs ?? 0;
      // Looked at again after the awaits: a completion may have begun meanwhile.
      if (created < before && !this.completing.has(id)) {
        await this.remove(id);
        aborted.push(id);
      }
    }
    return aborted;
  }
}
