import { requireAccess, tooLargeFor } from '../auth/sigv4.js';
import type { ObjectMeta } from '../disk/objects.js';
import { S3Error, sendXml, xmlElements } from '../errors.js';
import {
  decodeKey,
  header,
  MAX_PUT_BYTES,
  noSuchBucket,
  objectHeaders,
  type S3Request,
  validateKey,
} from '../request.js';
import {
  checkCopyConditions,
  copyToItself,
  invalidCopySource,
  metadataDirective,
  parseCopySource,
} from './copy-source.js';

/** A replace of the source that lands between looking at it and copying it: the copy looks again. */
const COPY_TRIES = 5;

/**
 * CopyObject within the bucket. The bytes are copied by the kernel, and the copy is checked to be
 * of the version whose header the conditions were checked against (else it looks again), so a
 * replace racing the copy cannot mix versions; the target is published like any PUT (temp file,
 * fsync, rename).
 */
export async function copyObject({ req, res, store, key, access }: S3Request): Promise<void> {
  const source = parseCopySource(header(req, 'x-amz-copy-source') ?? '');
  if (source.bucket !== store.bucket) throw noSuchBucket();
  let sourceKey: string;
  try {
    sourceKey = decodeKey(source.rawKey);
  } catch {
    throw invalidCopySource();
  }
  validateKey(sourceKey);
  requireAccess(access, sourceKey, 'read');
  const directive = metadataDirective(req);
  if (sourceKey === key && directive === 'COPY') throw copyToItself();
  const replaced = directive === 'REPLACE' ? objectHeaders(req) : null;
  const meta = await copyLatest(store, sourceKey, key, (source) => {
    checkCopyConditions(req, source, store.now());
    if (source.size > MAX_PUT_BYTES) throw copySourceTooLarge();
    if (access.maxObjectBytes !== undefined && source.size > access.maxObjectBytes) throw tooLargeFor(access);
    return (copied) => ({
      size: copied.size,
      etag: copied.etag,
      ...(replaced ?? { contentType: copied.contentType, metadata: copied.metadata }),
    });
  });
  sendXml(
    res,
    200,
    `<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xmlElements({
      LastModified: new Date(meta.lastModified).toISOString(),
      ETag: `"${meta.etag}"`,
    })}</CopyObjectResult>`,
  );
}

/**
 * Looks at the source (`check` refuses it, or says what the copy's header holds), then copies it:
 * the copy is of the version looked at, or the source is looked at again (a replace raced it).
 */
async function copyLatest(
  store: S3Request['store'],
  sourceKey: string,
  key: string,
  check: (source: ObjectMeta) => (copied: ObjectMeta) => Omit<ObjectMeta, 'key' | 'lastModified'>,
): Promise<ObjectMeta> {
  for (let i = 0; i < COPY_TRIES; i++) {
    const object = await store.disk.open(sourceKey);
    if (!object) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: sourceKey });
    await object.close();
    const copied = await store.disk.copy(object.meta, key, check(object.meta));
    if (copied) return copied;
  }
  throw new S3Error(
    409,
    'OperationAborted',
    'A conflicting conditional operation is currently in progress against this resource. Please try again.',
  );
}

function copySourceTooLarge(): S3Error {
  return new S3Error(
    400,
    'InvalidRequest',
    `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_PUT_BYTES}`,
  );
}
