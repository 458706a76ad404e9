import { createHash } from 'node:crypto';
import type fs from 'node:fs/promises';
import path from 'node:path';
import { badRequest } from '../errors.js';

/**
 * The object file format: objects are files named by the SHA-256 of their key, so no key can name
 * a path. Each file holds a fixed-size header (magic, length, JSON: key, type, ETag, metadata) and
 * then the bytes.
 */
export const HEADER_BYTES = 8192;
const MAGIC = 0x53334731; // "S3G1"
/** Most headers are a few hundred bytes: read that much, and the rest only when there is more. */
const USUAL_HEADER_BYTES = 1024;

export interface ObjectMeta {
  key: string;
  size: number;
  /** hex MD5, unquoted */
  etag: string;
  contentType: string;
  lastModified: number;
  metadata: Record<string, string>;
}

/** The file under `root` that holds `key`: <root>/<2 hex>/<sha256 of key>.obj */
export function objectPath(root: string, key: string): string {
  const hash = createHash('sha256').update(key).digest('hex');
  return path.join(root, hash.slice(0, 2), `${hash}.obj`);
}

/** The 256 directories object files live in, by name. */
export const OBJECT_DIR = /^[0-9a-f]{2}$/;
export const OBJECT_FILE = /\.obj$/;

export async function writeHeader(handle: fs.FileHandle, meta: ObjectMeta): Promise<void> {
  const json = Buffer.from(JSON.stringify(meta));
  if (json.length + 8 > HEADER_BYTES)
    throw badRequest('MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size.');
  const header = Buffer.alloc(8);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(json.length, 4);
  await handle.write(Buffer.concat([header, json]), 0, json.length + 8, 0);
}

export async function readHeader(handle: fs.FileHandle): Promise<ObjectMeta> {
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
