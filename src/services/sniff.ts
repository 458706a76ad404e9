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

/** The type a kept file gets when its bytes tell none (text, say): never one a browser would render. */
export const UNKNOWN_FILE_TYPE = 'application/octet-stream';

/**
 * The type of any other file (ACCEPT=any) as its first bytes tell it, or null. Types a browser could
 * run as a page (HTML, SVG, XML) count as none: a file is only ever downloaded, but is not labelled so.
 */
export async function sniffFileType(head: Uint8Array): Promise<string | null> {
  const { fileTypeFromBuffer } = await import('file-type');
  const mime = (await fileTypeFromBuffer(head))?.mime;
  return mime && !/html|xml|svg|javascript/i.test(mime) ? mime : null;
}
