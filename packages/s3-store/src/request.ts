import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FormPrefixes } from './auth/form-prefixes.js';
import type { Access, Authenticator, QueryPairs } from './auth/sigv4.js';
import type { MultipartUploads } from './disk/multipart.js';
import type { DiskObjects } from './disk/objects.js';
import { badRequest, S3Error } from './errors.js';
import { requireSendableMeta } from './object-headers.js';

/** What every operation works with: the store's parts, and one request already authenticated. */
export interface Store {
  bucket: string;
  region: string;
  mountPath: string;
  disk: DiskObjects;
  auth: Authenticator;
  now: () => Date;
  multipart: MultipartUploads;
  /** set when a `${filename}` form may store one key under its prefix (see S3ServerOptions) */
  formPrefixes?: FormPrefixes;
}

export interface S3Request {
  req: IncomingMessage;
  res: ServerResponse;
  store: Store;
  requestId: string;
  /** the decoded, validated object key; '' for a request on the bucket */
  key: string;
  query: QueryPairs;
  /** x-amz-content-sha256 as signed (UNSIGNED-PAYLOAD for presigned URLs) */
  payloadHash: string;
  /** what the request's key may touch (a form's is checked by PostObject itself) */
  access: Access;
  /** records the key a signature was checked against (the access log and `onAccess` name it) */
  authenticated(access: Access): void;
}

/** The largest object one PUT, copy or form may write, as S3's own limit. */
export const MAX_PUT_BYTES = 5 * 1024 * 1024 * 1024;
const MAX_KEY_BYTES = 1024;

export const notImplemented = (
  message = 'A header or query you provided implies functionality that is not implemented.',
) => new S3Error(501, 'NotImplemented', message);

export const noSuchBucket = () => new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist');

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export function queryValue(query: QueryPairs, name: string): string | undefined {
  return query.find(([k]) => k === name)?.[1];
}

/** The type and user metadata a PUT or a REPLACE copy gives the object, refused if they could not be served. */
export function objectHeaders(req: IncomingMessage): {
  contentType: string;
  metadata: Record<string, string>;
} {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') metadata[name.slice(11)] = value;
  }
  const contentType = header(req, 'content-type') ?? 'binary/octet-stream';
  requireSendableMeta(contentType, metadata);
  return { contentType, metadata };
}

export function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badRequest('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** Percent-escapes decoded exactly once; invalid UTF-8 is refused, never replaced. */
export function decodeKey(raw: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw badRequest('InvalidURI', "Couldn't parse the specified URI.");
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw badRequest('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** Keys never name a file (objects are stored by hash), but dot segments, leading slashes and control characters are refused outright. */
export function validateKey(key: string): string {
  if (!key) throw badRequest('InvalidArgument', 'Object key must not be empty.');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw badRequest('KeyTooLongError', 'Your key is too long');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\u0000-\u001f\u007f]/.test(key))
    throw badRequest('InvalidArgument', 'Object key contains control characters.');
  if (key.startsWith('/') || key.split(/[/\\]/).some((s) => s === '.' || s === '..')) {
    throw badRequest(
      'InvalidArgument',
      'Object key must not contain "." or ".." segments or start with "/".',
    );
  }
  return key;
}

/** A small body read whole (an XML request), refused once it passes `max` bytes. */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw badRequest('MaxMessageLengthExceeded', 'Your request was too big.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
