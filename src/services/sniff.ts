import type { Readable } from 'node:stream';
import { ACCEPTED_TYPES } from '../image-types.js';
import type { ObjectInfo, Storage } from '../storage/storage.js';
import { SNIFF_BYTES, sniffImageType } from './thumbnails.js';

/**
 * The type of a file its first bytes did not tell, read from a stream as far as file-type needs
 * (a TIFF's directory may sit at its end); the stream is destroyed afterwards, read or not.
 */
async function sniffImageStream(stream: Readable): Promise<string | null> {
  try {
    const { fileTypeFromStream } = await import('file-type');
    const type = await fileTypeFromStream(stream);
    return type && ACCEPTED_TYPES.has(type.mime) ? type.mime : null;
  } finally {
    stream.destroy();
  }
}

/**
 * The type of a stored object from its first bytes (`start`, read in one request with its size and
 * ETag), reading on as a stream when they do not tell, pinned to that version (`ifMatch`): null when
 * it is none of ours. A version replaced meanwhile throws SourceChanged.
 */
export async function sniffStoredType(
  storage: Storage,
  key: string,
  start: { bytes: Uint8Array; info: ObjectInfo },
  ifMatch: string,
): Promise<string | null> {
  const fromStart = await sniffImageType(start.bytes);
  if (fromStart !== null || start.info.size <= SNIFF_BYTES) return fromStart;
  return sniffImageStream(await storage.getStream(key, { ifMatch }));
}
