import { badRequest, sendXml, xmlElements, xmlEscape } from '../errors.js';
import { queryValue, type S3Request } from '../request.js';

/** ListObjectsV2: keys in UTF-8 byte order, with prefix, delimiter, start-after and continuation. */
export async function listObjectsV2({ res, store, query }: S3Request): Promise<void> {
  const get = (name: string) => queryValue(query, name);
  const prefix = get('prefix') ?? '';
  const delimiter = get('delimiter') ?? '';
  const maxKeysText = get('max-keys') ?? '1000';
  if (!/^\d+$/.test(maxKeysText))
    throw badRequest('InvalidArgument', 'Provided max-keys not an integer or within integer range');
  const maxKeys = Math.min(1000, Number(maxKeysText));
  const token = get('continuation-token');
  let startAfter = get('start-after') ?? '';
  if (token !== undefined) {
    const decoded = Buffer.from(token, 'base64url').toString('utf8');
    if (!token || Buffer.from(decoded).toString('base64url') !== token) {
      throw badRequest('InvalidArgument', 'The continuation token provided is incorrect');
    }
    startAfter = decoded;
  }
  await store.disk.indexed;
  const page = store.disk.list({ prefix, startAfter, maxKeys, delimiter });
  const contents = page.contents
    .map(
      (c) =>
        `<Contents>${xmlElements({
          Key: c.key,
          LastModified: new Date(c.lastModified).toISOString(),
          ETag: `"${c.etag}"`,
          Size: c.size,
          StorageClass: 'STANDARD',
        })}</Contents>`,
    )
    .join('');
  const prefixes = page.prefixes
    .map((p) => `<CommonPrefixes><Prefix>${xmlEscape(p)}</Prefix></CommonPrefixes>`)
    .join('');
  const body = `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xmlElements({
    Name: store.bucket,
    Prefix: prefix,
    Delimiter: delimiter || undefined,
    MaxKeys: maxKeys,
    KeyCount: page.contents.length + page.prefixes.length,
    IsTruncated: String(page.isTruncated),
    ContinuationToken: token,
    NextContinuationToken: page.isTruncated ? Buffer.from(page.last).toString('base64url') : undefined,
    StartAfter: get('start-after'),
  })}${contents}${prefixes}</ListBucketResult>`;
  sendXml(res, 200, body);
}
