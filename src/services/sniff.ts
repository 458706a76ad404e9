import type { Readable } from 'node:stream';
import { ACCEPTED_TYPES, FILE_TYPE_NAMES } from '../image-types.js';
import type { ObjectInfo, Storage } from '../storage/storage.js';
import { loadFileType, SNIFF_BYTES } from './thumbnails.js';

/**
 * The type of a file its first bytes did not tell, read from a stream as far as file-type needs
 * (a TIFF's directory may sit at its end); the stream is destroyed afterwards, read or not.
 */
async function sniffImageStream(stream: Readable): Promise<string | null> {
  try {
    const { fileTypeFromStream } = await loadFileType();
    return accepted(await fileTypeFromStream(stream));
  } finally {
    stream.destroy();
  }
}

/** The type of a file from its first bytes (SNIFF_BYTES of them): null when it is none of our image types. */
async function sniffImageType(head: Uint8Array): Promise<string | null> {
  const { fileTypeFromBuffer } = await loadFileType();
  return accepted(await fileTypeFromBuffer(head));
}

const accepted = (type: { mime: string } | undefined) =>
  type && ACCEPTED_TYPES.has(type.mime) ? type.mime : null;

/** A TIFF's first bytes ("II*\0" or "MM\0*"): the one kind whose type may only tell further in. */
const isTiffStart = (bytes: Uint8Array) =>
  (bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 0x2a && bytes[3] === 0x00) ||
  (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0x00 && bytes[3] === 0x2a);

/**
 * The type of a stored object from its first bytes (`start`, read in one request with its size and
 * ETag), reading on as a stream when they do not tell (a TIFF whose directory sits at its end),
 * pinned to that version (`ifMatch`): null when it is none of our image types. A version replaced
 * meanwhile throws SourceChanged.
 */
async function sniffStoredType(
  storage: Storage,
  key: string,
  start: { bytes: Uint8Array; info: ObjectInfo },
  ifMatch: string,
): Promise<string | null> {
  const fromStart = await sniffImageType(start.bytes);
  if (fromStart !== null || start.info.size <= SNIFF_BYTES || !isTiffStart(start.bytes)) return fromStart;
  return sniffImageStream(await storage.getStream(key, { ifMatch }));
}

/** The type a kept file gets when its bytes tell none we name: never one a browser would render. */
export const UNKNOWN_FILE_TYPE = 'application/octet-stream';

/**
 * The type a stored object is kept with: one of our image types, else (ACCEPT=any) a type from the
 * first bytes that we name (FILE_TYPE_NAMES), else UNKNOWN_FILE_TYPE. Completion records it; the
 * original's copy is checked against it.
 */
export async function sniffKeptType(
  storage: Storage,
  key: string,
  start: { bytes: Uint8Array; info: ObjectInfo },
  ifMatch: string,
): Promise<string> {
  const image = await sniffStoredType(storage, key, start, ifMatch);
  if (image !== null) return image;
  const { fileTypeFromBuffer } = await loadFileType();
  const mime = (await fileTypeFromBuffer(start.bytes))?.mime;
  return mime && FILE_TYPE_NAMES.has(mime) ? mime : UNKNOWN_FILE_TYPE;
}
