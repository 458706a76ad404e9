import type { IncomingMessage } from 'node:http';
import { badRequest, S3Error } from '../errors.js';

/**
 * CopyObject's request, read the way S3 reads it: the `x-amz-copy-source` header
 * (`[/]<bucket>/<url-encoded key>`), the metadata directive and the copy-source conditions.
 */
export interface CopySource {
  bucket: string;
  /** still percent-encoded: the caller decodes it with the same rules as a path key */
  rawKey: string;
}

export const invalidCopySource = () =>
  new S3Error(400, 'InvalidArgument', 'Invalid copy source object key', {
    ArgumentName: 'x-amz-copy-source',
  });

export function parseCopySource(value: string): CopySource {
  const q = value.indexOf('?');
  if (q >= 0) {
    const query = value.slice(q + 1);
    if (/^versionId=/.test(query)) {
      throw new S3Error(501, 'NotImplemented', 'The embedded store does not keep versions of objects.');
    }
    throw invalidCopySource();
  }
  // AWS reads "+" in the header as a space, as in a form; callers encode a real "+" as %2B.
  const text = value.replaceAll('+', ' ').replace(/^\//, '');
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) throw invalidCopySource();
  let bucket: string;
  try {
    bucket = decodeURIComponent(text.slice(0, slash));
  } catch {
    throw invalidCopySource();
  }
  return { bucket, rawKey: text.slice(slash + 1) };
}

export type MetadataDirective = 'COPY' | 'REPLACE';

export function metadataDirective(req: IncomingMessage): MetadataDirective {
  const value = req.headers['x-amz-metadata-directive'];
  if (value === undefined || value === 'COPY') return 'COPY';
  if (value === 'REPLACE') return 'REPLACE';
  throw new S3Error(400, 'InvalidArgument', 'Unknown metadata directive.', {
    ArgumentName: 'x-amz-metadata-directive',
  });
}

/**
 * The source's conditions as S3 combines them: a matching If-Match overrides a failing
 * If-Unmodified-Since, and a failing If-None-Match fails whatever If-Modified-Since says.
 */
export function checkCopyConditions(
  req: IncomingMessage,
  source: { etag: string; lastModified: number },
  now: Date,
): void {
  const get = (name: string) => {
    const value = req.headers[`x-amz-copy-source-${name}`];
    return typeof value === 'string' ? value : undefined;
  };
  const failed = (condition: string) =>
    new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
      Condition: `x-amz-copy-source-${condition}`,
    });
  const ifMatch = get('if-match');
  const ifNoneMatch = get('if-none-match');
  const ifUnmodifiedSince = httpDate(get('if-unmodified-since'));
  const ifModifiedSince = httpDate(get('if-modified-since'));
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, source.etag)) throw failed('If-Match');
  } else if (ifUnmodifiedSince !== null && source.lastModified > ifUnmodifiedSince) {
    throw failed('If-Unmodified-Since');
  }
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, source.etag)) throw failed('If-None-Match');
  } else if (
    ifModifiedSince !== null &&
    ifModifiedSince <= now.getTime() &&
    source.lastModified <= ifModifiedSince
  ) {
    throw failed('If-Modified-Since');
  }
}

/** A list of ETags, quoted or not, or `*`; the stored ETag is unquoted hex. */
function etagMatches(list: string, etag: string): boolean {
  return list.split(',').some((item) => {
    const tag = item.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag || tag === `"${etag}"`;
  });
}

/** S3 ignores a date it cannot read. */
function httpDate(value: string | undefined): number | null {
  if (value === undefined) return null;
  const time = Date.parse(value);
  return Number.isNaN(time) ? null : time;
}

export const copyToItself = () =>
  badRequest(
    'InvalidRequest',
    "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
  );
