import type { Readable } from 'node:stream';
import { ACCEPTED_TYPES } from '../image-types.js';

/**
 * The type of a file its first bytes did not tell, read from a stream as far as file-type needs
 * (a TIFF's directory may sit at its end); the stream is destroyed afterwards, read or not.
 */
export async function sniffImageStream(stream: Readable): Promise<string | null> {
  try {
    const { fileTypeFromStream } = await import('file-type');
    const type = await fileTypeFromStream(stream);
    return type && ACCEPTED_TYPES.has(type.mime) ? type.mime : null;
  } finally {
    stream.destroy();
  }
}
