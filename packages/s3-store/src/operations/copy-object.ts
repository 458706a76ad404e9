import { Readable } from 'node:stream';
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

/**
 * CopyObject within the bucket. The source's header and bytes come from one open file, so a
 * replace racing the copy cannot mix versions; the target is written like any PUT (temp file,
 * fsync, rename).
 */
export async function copyObject({ req, res, store, key }: S3Request): Promise<void> {
  const source = parseCopySource(header(req, 'x-amz-copy-source') ?? '');
  if (source.bucket !== store.bucket) throw noSuchBucket();
  let sourceKey: string;
  try {
    sourceKey = decodeKey(source.rawKey);
  } catch {
    throw invalidCopySource();
  }
  validateKey(sourceKey);
  const directive = metadataDirective(req);
  if (sourceKey === key && directive === 'COPY') throw copyToItself();
  const replaced = directive === 'REPLACE' ? objectHeaders(req) : null;
  const object = await store.disk.open(sourceKey);
  if (!object) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: sourceKey });
  let meta: ObjectMeta;
  try {
    checkCopyConditions(req, object.meta, store.now());
    const { size } = object.meta;
    meta = await store.disk.write(key, size === 0 ? Readable.from([]) : object.read(0, size - 1), {
      ...(replaced ?? { contentType: object.meta.contentType, metadata: object.meta.metadata }),
      maxBytes: MAX_PUT_BYTES,
    });
  } finally {
    await object.close();
  }
  sendXml(
    res,
    200,
    `<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xmlElements({
      LastModified: new Date(meta.lastModified).toISOString(),
      ETag: `"${meta.etag}"`,
    })}</CopyObjectResult>`,
  );
}
