import { tooLargeFor } from '../auth/sigv4.js';
import { MAX_PARTS, MIN_PART_BYTES, type PartInfo } from '../disk/multipart.js';
import { byteOrder } from '../disk/objects.js';
import { accessDenied, badRequest, S3Error, sendXml, xmlElements } from '../errors.js';
import { header, MAX_PUT_BYTES, objectHeaders, queryValue, readBody, type S3Request } from '../request.js';
import { requestBody } from '../request-body.js';
import { readXml, xmlText } from '../xml.js';
import { bodyChecks } from './put-object.js';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
/** A Complete body lists at most 10,000 parts of about 100 bytes each. */
const MAX_COMPLETE_BYTES = 2 * 1024 * 1024;
const OWNER = '<Owner><ID>s3-gallery</ID></Owner>';

const uploadIdOf = (r: S3Request) => queryValue(r.query, 'uploadId') ?? '';
const iso = (ms: number) => new Date(ms).toISOString();
/** ETags compare without their quotes and in either case, as S3 compares them. */
const bare = (etag: string) => etag.trim().replace(/^"|"$/g, '').toLowerCase();

/** CreateMultipartUpload: the object's type and metadata are given now and kept for the end. */
export async function createMultipartUpload({ req, res, store, key, access }: S3Request): Promise<void> {
  const { maxOpenUploads, writePrefix } = access;
  if (maxOpenUploads !== undefined && writePrefix !== null) {
    const open = (await store.multipart.list()).filter((u) => u.key.startsWith(writePrefix)).length;
    if (open >= maxOpenUploads)
      throw accessDenied(
        `This key may have ${maxOpenUploads} multipart uploads in progress; complete or abort one first.`,
      );
  }
  const uploadId = await store.multipart.create(key, objectHeaders(req));
  sendXml(
    res,
    200,
    `<InitiateMultipartUploadResult xmlns="${NS}">${xmlElements({ Bucket: store.bucket, Key: key, UploadId: uploadId })}</InitiateMultipartUploadResult>`,
  );
}

/** UploadPart: a part's bytes, checked as a PUT's are; the answer's ETag is their MD5. */
export async function uploadPart(r: S3Request): Promise<void> {
  const { req, res, store, key, payloadHash } = r;
  const text = queryValue(r.query, 'partNumber') ?? '';
  const partNumber = Number(text);
  if (!/^\d{1,5}$/.test(text) || partNumber < 1 || partNumber > MAX_PARTS) {
    throw new S3Error(
      400,
      'InvalidArgument',
      'Part number must be an integer between 1 and 10000, inclusive',
      {
        ArgumentName: 'partNumber',
        ArgumentValue: text,
      },
    );
  }
  if (header(req, 'content-length') === undefined && header(req, 'transfer-encoding') === undefined) {
    throw new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
  }
  const body = bodyChecks(req, payloadHash);
  const part = await store.multipart.writePart(uploadIdOf(r), key, partNumber, requestBody(req), {
    maxBytes: await partRoom(r, partNumber),
    ...body.options,
  });
  res.writeHead(200, { ETag: `"${part.etag}"`, ...body.echo }).end();
}

/**
 * CompleteMultipartUpload: every listed part must have been uploaded with the ETag listed, in
 * ascending order, each but the last at least 5 MiB. All of that is checked before a byte is
 * joined, so a refusal is a plain 4xx; the object appears by one rename, with S3's multipart ETag.
 */
export async function completeMultipartUpload(r: S3Request): Promise<void> {
  const { req, store, key } = r;
  const uploadId = uploadIdOf(r);
  // A Complete sent again (its answer was lost): the same answer, not NoSuchUpload.
  const done = store.multipart.completedAs(uploadId, key);
  if (done) return answerCompleted(r, done.etag);
  const info = await store.multipart.get(uploadId, key);
  const listed = listedParts(await readBody(req, MAX_COMPLETE_BYTES));
  if (listed.length === 0) throw badRequest('InvalidRequest', 'You must specify at least one part');
  for (let i = 1; i < listed.length; i++) {
    if ((listed[i] as Listed).partNumber <= (listed[i - 1] as Listed).partNumber) {
      throw new S3Error(
        400,
        'InvalidPartOrder',
        'The list of parts was not in ascending order. Parts must be ordered by part number.',
        { UploadId: uploadId },
      );
    }
  }
  const uploaded = new Map((await store.multipart.parts(uploadId, key)).map((p) => [p.partNumber, p]));
  const chosen: PartInfo[] = [];
  for (const [i, want] of listed.entries()) {
    const part = uploaded.get(want.partNumber);
    if (!part || part.etag !== bare(want.etag)) {
      throw new S3Error(
        400,
        'InvalidPart',
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        { ETag: want.etag, PartNumber: want.partNumber, UploadId: uploadId },
      );
    }
    if (i < listed.length - 1 && part.size < MIN_PART_BYTES) {
      throw new S3Error(
        400,
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed size',
        {
          ETag: want.etag,
          PartNumber: want.partNumber,
          MinSizeAllowed: MIN_PART_BYTES,
          ProposedSize: part.size,
        },
      );
    }
    chosen.push(part);
  }
  const total = chosen.reduce((sum, p) => sum + p.size, 0);
  const announced = header(req, 'x-amz-mp-object-size');
  if (announced !== undefined && Number(announced) !== total) {
    throw badRequest(
      'InvalidRequest',
      `The provided 'x-amz-mp-object-size' header value ${announced} does not match what was computed: ${total}`,
    );
  }
  const meta = await store.multipart.complete(info, chosen);
  answerCompleted(r, meta.etag);
}

function answerCompleted({ res, store, key }: S3Request, etag: string): void {
  const location = `${store.mountPath}/${store.bucket}/${encodeURIComponent(key)}`;
  sendXml(
    res,
    200,
    `<CompleteMultipartUploadResult xmlns="${NS}">${xmlElements({
      Location: location,
      Bucket: store.bucket,
      Key: key,
      ETag: `"${etag}"`,
    })}</CompleteMultipartUploadResult>`,
  );
}

interface Listed {
  partNumber: number;
  etag: string;
}

/** The parts a Complete body lists, as sent (order checked by the caller). */
function listedParts(body: Buffer): Listed[] {
  if (body.length === 0) return [];
  const doc = readXml(body, ['Part']).CompleteMultipartUpload;
  if (doc === '' || doc === undefined) return [];
  if (typeof doc !== 'object' || doc === null)
    throw badRequest(
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema',
    );
  const parts: unknown[] = doc.Part ?? [];
  if (parts.length > MAX_PARTS)
    throw badRequest(
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema',
    );
  return parts.map((p) => {
    const part = p as { PartNumber?: unknown; ETag?: unknown } | null;
    const number = xmlText(part?.PartNumber).trim();
    if (!/^\d{1,5}$/.test(number)) {
      throw badRequest(
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema',
      );
    }
    return { partNumber: Number(number), etag: xmlText(part?.ETag ?? '') };
  });
}

/** AbortMultipartUpload: its parts go; a part still on its way is refused when it lands. */
export async function abortMultipartUpload(r: S3Request): Promise<void> {
  await r.store.multipart.abort(uploadIdOf(r), r.key);
  r.res.writeHead(204).end();
}

/** ListParts, from after `part-number-marker`, at most `max-parts` (1000). */
export async function listParts(r: S3Request): Promise<void> {
  const { res, store, key } = r;
  const uploadId = uploadIdOf(r);
  const max = intArgument(r, 'max-parts', 1000);
  const marker = intArgument(r, 'part-number-marker', 0);
  const all = (await store.multipart.parts(uploadId, key)).filter((p) => p.partNumber > marker);
  const page = all.slice(0, max);
  const parts = page
    .map(
      (p) =>
        `<Part>${xmlElements({ PartNumber: p.partNumber, LastModified: iso(p.lastModified), ETag: `"${p.etag}"`, Size: p.size })}</Part>`,
    )
    .join('');
  sendXml(
    res,
    200,
    `<ListPartsResult xmlns="${NS}">${xmlElements({ Bucket: store.bucket, Key: key, UploadId: uploadId })}<Initiator><ID>s3-gallery</ID></Initiator>${OWNER}${xmlElements(
      {
        StorageClass: 'STANDARD',
        PartNumberMarker: marker,
        NextPartNumberMarker: page.at(-1)?.partNumber ?? 0,
        MaxParts: max,
        IsTruncated: String(all.length > page.length),
      },
    )}${parts}</ListPartsResult>`,
  );
}

/** ListMultipartUploads: the uploads in progress under `prefix`, by key, at most `max-uploads`. */
export async function listMultipartUploads(r: S3Request): Promise<void> {
  const { res, store } = r;
  const encoding = queryValue(r.query, 'encoding-type');
  if (encoding !== undefined && encoding !== 'url') {
    throw new S3Error(400, 'InvalidArgument', 'Invalid Encoding Method specified in Request', {
      ArgumentName: 'encoding-type',
      ArgumentValue: encoding,
    });
  }
  const prefix = queryValue(r.query, 'prefix') ?? '';
  const keyMarker = queryValue(r.query, 'key-marker') ?? '';
  const uploadIdMarker = queryValue(r.query, 'upload-id-marker') ?? '';
  const max = intArgument(r, 'max-uploads', 1000);
  const listed = (await store.multipart.list()).filter((u) => u.key.startsWith(prefix));
  // After the marker: past its key, or (with an upload id) past that upload of its key.
  const markerAt = uploadIdMarker
    ? listed.findIndex((u) => u.key === keyMarker && u.uploadId === uploadIdMarker)
    : -1;
  const all =
    markerAt >= 0
      ? listed.slice(markerAt + 1)
      : listed.filter((u) => !keyMarker || byteOrder(u.key, keyMarker) > 0);
  const page = all.slice(0, max);
  const uploads = page
    .map(
      (u) =>
        `<Upload>${xmlElements({ Key: u.key, UploadId: u.uploadId })}<Initiator><ID>s3-gallery</ID></Initiator>${OWNER}${xmlElements({ StorageClass: 'STANDARD', Initiated: iso(u.initiated) })}</Upload>`,
    )
    .join('');
  const last = page.at(-1);
  sendXml(
    res,
    200,
    `<ListMultipartUploadsResult xmlns="${NS}">${xmlElements({
      Bucket: store.bucket,
      KeyMarker: keyMarker,
      UploadIdMarker: uploadIdMarker,
      NextKeyMarker: last?.key ?? '',
      NextUploadIdMarker: last?.uploadId ?? '',
      Prefix: prefix || undefined,
      MaxUploads: max,
      IsTruncated: String(all.length > page.length),
    })}${uploads}</ListMultipartUploadsResult>`,
  );
}

/** UploadPartCopy is not implemented: refused, never taken for a CopyObject of the whole object. */
export async function uploadPartCopy(): Promise<void> {
  throw new S3Error(501, 'NotImplemented', 'UploadPartCopy is not supported by the embedded store.');
}

/**
 * The most a part may hold: S3's limit, or for a key with a size limit what its other parts leave
 * of it, so an upload's parts together never exceed what the key may write.
 */
async function partRoom(r: S3Request, partNumber: number): Promise<number> {
  const max = r.access.maxObjectBytes;
  if (max === undefined) return MAX_PUT_BYTES;
  const others = (await r.store.multipart.parts(uploadIdOf(r), r.key))
    .filter((p) => p.partNumber !== partNumber)
    .reduce((sum, p) => sum + p.size, 0);
  if (others >= max) throw tooLargeFor(r.access);
  return Math.min(MAX_PUT_BYTES, max - others);
}

function intArgument(r: S3Request, name: string, fallback: number): number {
  const text = queryValue(r.query, name);
  if (text === undefined) return Math.min(fallback, 1000);
  if (!/^\d{1,10}$/.test(text) || Number(text) > 2_147_483_647) {
    throw new S3Error(
      400,
      'InvalidArgument',
      `Argument ${name} must be an integer between 0 and 2147483647`,
      {
        ArgumentName: name,
        ArgumentValue: text,
      },
    );
  }
  return Math.min(Number(text), 1000);
}
