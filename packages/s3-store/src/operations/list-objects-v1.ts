import { byteOrder } from '../disk/objects.js';
import { S3Error, sendXml, xmlElements } from '../errors.js';
import { queryValue, type S3Request } from '../request.js';

/**
 * ListObjects (v1): keys in UTF-8 byte order after `marker`, with prefix, delimiter and max-keys.
 * As S3: `NextMarker` only when a delimiter was given and the page is cut (the last key or common
 * prefix of the page); a marker inside a rolled-up prefix skips the rest of it; with
 * `encoding-type=url` names are percent-encoded as forms encode them (boto3 always asks for it).
 */
export async function listObjectsV1({ res, store, query }: S3Request): Promise<void> {
  const get = (name: string) => queryValue(query, name);
  const encoding = get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') {
    throw new S3Error(400, 'InvalidArgument', 'Invalid Encoding Method specified in Request', {
      ArgumentName: 'encoding-type',
      ArgumentValue: encoding,
    });
  }
  if (get('continuation-token') !== undefined || get('start-after') !== undefined) {
    throw new S3Error(400, 'InvalidArgument', 'continuation-token and start-after need list-type=2.');
  }
  const prefix = get('prefix') ?? '';
  const delimiter = get('delimiter') ?? '';
  const marker = get('marker') ?? '';
  const maxKeysText = get('max-keys') ?? '1000';
  if (!/^\d{1,10}$/.test(maxKeysText) || Number(maxKeysText) > 2_147_483_647)
    throw new S3Error(400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range');
  const maxKeys = Math.min(1000, Number(maxKeysText));
  // A marker inside a prefix the delimiter rolls up: that prefix was listed already.
  const cut = delimiter && marker.startsWith(prefix) ? marker.indexOf(delimiter, prefix.length) : -1;
  const markerGroup = cut >= 0 ? marker.slice(0, cut + delimiter.length) : null;

  await store.disk.indexed;
  const listed = store.disk.list({ prefix, startAfter: marker, maxKeys: maxKeys + 1, delimiter });
  type Item = { key: string; entry?: (typeof listed.contents)[number] };
  const items: Item[] = [
    ...listed.contents.map((entry) => ({ key: entry.key, entry })),
    ...listed.prefixes.filter((p) => p !== markerGroup).map((key) => ({ key })),
  ].sort((a, b) => byteOrder(a.key, b.key));
  const page = items.slice(0, maxKeys);
  // Nothing asked for (max-keys=0): nothing listed, and nothing to page on to.
  const isTruncated = maxKeys > 0 && (items.length > maxKeys || listed.isTruncated);
  const name = (text: string) => (encoding === 'url' ? formEncode(text) : text);

  const contents = page
    .flatMap(({ entry }) =>
      entry
        ? [
            `<Contents>${xmlElements({
              Key: name(entry.key),
              LastModified: new Date(entry.lastModified).toISOString(),
              ETag: `"${entry.etag}"`,
              Size: entry.size,
            })}<Owner><ID>s3-gallery</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>`,
          ]
        : [],
    )
    .join('');
  const prefixes = page
    .flatMap((item) =>
      item.entry ? [] : [`<CommonPrefixes>${xmlElements({ Prefix: name(item.key) })}</CommonPrefixes>`],
    )
    .join('');
  const body = `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xmlElements({
    Name: store.bucket,
    Prefix: name(prefix),
    Marker: name(marker),
    NextMarker: delimiter && isTruncated ? name(page.at(-1)?.key ?? '') : undefined,
    MaxKeys: Number(maxKeysText),
    Delimiter: delimiter ? name(delimiter) : undefined,
    IsTruncated: String(isTruncated),
  })}${contents}${prefixes}${encoding ? '<EncodingType>url</EncodingType>' : ''}</ListBucketResult>`;
  sendXml(res, 200, body);
}

/** As a form encodes a value (space as "+"), keeping "/" as S3 does. */
function formEncode(text: string): string {
  return encodeURIComponent(text).replaceAll('%2F', '/').replaceAll('%20', '+');
}
