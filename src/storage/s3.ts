import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type { createPresignedPost as CreatePresignedPost } from '@aws-sdk/s3-presigned-post';
import type * as Presigner from '@aws-sdk/s3-request-presigner';
import {
  type BucketSettings,
  bareEtag,
  type ListedObject,
  type ObjectInfo,
  type PresignGetOptions,
  type PresignPartOptions,
  type PresignPostOptions,
  SourceChanged,
  type Storage,
  type StorageEncryption,
  type Told,
  type UploadedPart,
} from './storage.js';

// The AWS SDK is CommonJS: require() loads its hundreds of files about 60 ms faster than the ESM
// loader's CommonJS interop, a tenth of the server's start-up.
const require = createRequire(import.meta.url);
const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketEncryptionCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetPublicAccessBlockCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} = require('@aws-sdk/client-s3') as typeof ClientS3;
const { getSignedUrl } = require('@aws-sdk/s3-request-presigner') as typeof Presigner;
/** Only the upload page signs POST policies: loaded on first use, not at start-up. */
let createPresignedPost: typeof CreatePresignedPost | undefined;

export interface StorageOptions {
  /** server-side endpoint; undefined = AWS's own endpoint for the region */
  endpoint?: string;
  /** what browsers use for presigned URLs and form posts (defaults to endpoint) */
  publicEndpoint?: string;
  region: string;
  bucket: string;
  /** undefined = the SDK's default credential chain */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  forcePathStyle: boolean;
  /** server-side encryption asked for on every write: each PutObject, CopyObject and POST policy */
  encryption?: StorageEncryption;
}

/**
 * The one place the app talks S3; the same code path for AWS, MinIO, R2, Garage and the embedded
 * store. `now` (milliseconds, the app's injected clock) decides when a cached signed URL is too old
 * to hand out.
 */
export function createStorage(opts: StorageOptions, now: () => number = Date.now): Storage {
  const base = {
    // An endpoint that stops answering must fail a request in seconds, not hold it open for minutes;
    // kept-alive sockets, and enough of them that a busy app does not queue behind the SDK's 50.
    requestHandler: {
      connectionTimeout: 5000,
      requestTimeout: 30_000,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 256 }),
    },
    region: opts.region,
    forcePathStyle: opts.forcePathStyle,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  };
  const client = new S3Client({ ...base, ...(opts.endpoint ? { endpoint: opts.endpoint } : {}) });
  const publicEndpoint = opts.publicEndpoint ?? opts.endpoint;
  const signer =
    publicEndpoint === opts.endpoint
      ? client
      : new S3Client({ ...base, ...(publicEndpoint ? { endpoint: publicEndpoint } : {}) });
  // A part's URL must not carry a checksum of the empty body it was signed without: the SDK adds
  // one by default, and the bucket would refuse every part for it.
  let partSigner: ClientS3.S3Client | undefined;
  const Bucket = opts.bucket;
  const { sseParams, sseFields } = encryptionOf(opts.encryption);
  const urlCache = createUrlCache(now);

  const storage: Storage = {
    bucket: Bucket,

    /** A browser form upload of exactly one key, with size, type and expiry pinned by the policy. */
    async presignPost(o: PresignPostOptions): Promise<{ url: string; fields: Record<string, string> }> {
      const fields: Record<string, string> = {};
      createPresignedPost ??= (
        require('@aws-sdk/s3-presigned-post') as { createPresignedPost: typeof CreatePresignedPost }
      ).createPresignedPost;
      const conditions: NonNullable<Parameters<typeof CreatePresignedPost>[1]['Conditions']> = [
        ['content-length-range', o.minBytes ?? 1, o.maxBytes],
        ['starts-with', '$Content-Type', o.contentTypePrefix],
      ];
      // The form must carry the encryption fields, exactly: a post without them is refused by S3.
      for (const [name, value] of Object.entries(sseFields)) {
        fields[name] = value;
        conditions.push({ [name]: value });
      }
      if (o.redirect) fields.success_action_redirect = o.redirect;
      else fields.success_action_status = String(o.status ?? 204);
      return createPresignedPost(signer, {
        Bucket,
        Key: o.key,
        Conditions: conditions,
        Fields: fields,
        Expires: o.ttlSeconds,
      });
    },

    async presignGet(o: PresignGetOptions): Promise<string> {
      // A URL with a rounded signing date is the same for everyone until the next round: sign once.
      const cacheKey = o.signingDate
        ? `${o.signingDate.getTime()}|${o.ttlSeconds}|${o.contentType ?? ''}|${o.download ?? ''}|${o.key}`
        : null;
      const cached = cacheKey ? urlCache.get(cacheKey) : undefined;
      if (cached) return cached;
      const command = new GetObjectCommand({
        Bucket,
        Key: o.key,
        ...(o.download ? { ResponseContentDisposition: attachment(o.download) } : {}),
        ...(o.contentType ? { ResponseContentType: o.contentType } : {}),
      });
      const url = await getSignedUrl(signer, command, {
        expiresIn: o.ttlSeconds,
        ...(o.signingDate ? { signingDate: o.signingDate } : {}),
      });
      if (cacheKey) urlCache.set(cacheKey, url);
      return url;
    },

    async head(key: string): Promise<ObjectInfo | null> {
      try {
        const res = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return {
          size: res.ContentLength ?? 0,
          ...(res.ContentType ? { contentType: res.ContentType } : {}),
          ...(res.ETag ? { etag: res.ETag } : {}),
          ...(res.LastModified ? { lastModified: res.LastModified } : {}),
        };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },

    async getRange(key: string, start: number, endInclusive: number): Promise<Uint8Array> {
      const res = await client.send(
        new GetObjectCommand({ Bucket, Key: key, Range: `bytes=${start}-${endInclusive}` }),
      );
      if (!res.Body) return new Uint8Array();
      return res.Body.transformToByteArray();
    },

    async readStart(key: string, length: number): Promise<{ bytes: Uint8Array; info: ObjectInfo } | null> {
      try {
        const res = await client.send(
          new GetObjectCommand({ Bucket, Key: key, Range: `bytes=0-${length - 1}` }),
        );
        const bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
        // "bytes 0-4099/123456": the whole object's size follows the slash. No Content-Range: the
        // bucket sent the whole object. A size it does not tell ("/*") is not guessed.
        const range = res.ContentRange;
        const size = range === undefined ? bytes.length : Number(range.split('/')[1]);
        if (!Number.isSafeInteger(size))
          throw new Error(`The bucket did not tell the size of ${key} (${range}).`);
        const info: ObjectInfo = {
          size,
          ...(res.ContentType ? { contentType: res.ContentType } : {}),
          ...(res.ETag ? { etag: res.ETag } : {}),
          ...(res.LastModified ? { lastModified: res.LastModified } : {}),
        };
        return { bytes, info };
      } catch (err) {
        if (isNotFound(err) || isNoSuchKey(err)) return null;
        // An empty object has no first byte to send (416): what it is, the head says.
        if (!isUnsatisfiableRange(err)) throw err;
        const info = await storage.head(key);
        return info ? { bytes: new Uint8Array(), info } : null;
      }
    },

    async getStream(key: string, o: { ifMatch?: string } = {}): Promise<Readable> {
      const res = await client
        .send(new GetObjectCommand({ Bucket, Key: key, ...(o.ifMatch ? { IfMatch: o.ifMatch } : {}) }))
        .catch((err: unknown) => {
          throw isPreconditionFailed(err) ? new SourceChanged(key, err) : err;
        });
      // In Node the SDK's body is an http.IncomingMessage, a Readable.
      return res.Body instanceof Readable ? res.Body : Readable.from([]);
    },

    /** A stream body needs its length: the SDK frames it as aws-chunked with the decoded length. */
    async put(
      key: string,
      body: Uint8Array | Readable,
      contentType: string,
      contentLength?: number,
    ): Promise<{ etag?: string }> {
      const res = await client.send(
        new PutObjectCommand({
          Bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ...(contentLength !== undefined ? { ContentLength: contentLength } : {}),
          ...sseParams,
        }),
      );
      return res.ETag ? { etag: res.ETag } : {};
    },

    /**
     * A server-side copy within the bucket (type and metadata kept). With `ifMatch`, only if the
     * source still has that ETag (else S3's 412 PreconditionFailed); a missing source is NoSuchKey.
     */
    async copy(sourceKey: string, destKey: string, o: { ifMatch?: string } = {}): Promise<{ etag?: string }> {
      const res = await client
        .send(
          new CopyObjectCommand({
            Bucket,
            Key: destKey,
            // The SDK sends CopySource as given; S3 URL-decodes it, so each key segment is encoded here.
            CopySource: `${Bucket}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`,
            ...(o.ifMatch ? { CopySourceIfMatch: o.ifMatch } : {}),
            // A copy is encrypted as asked for it, not as its source was: the same settings again.
            ...sseParams,
          }),
        )
        .catch((err: unknown) => {
          // S3's 412: the `ifMatch` no longer names the source.
          throw isPreconditionFailed(err) ? new SourceChanged(sourceKey, err) : err;
        });
      const etag = res.CopyObjectResult?.ETag;
      return etag ? { etag } : {};
    },

    async delete(key: string): Promise<void> {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },

    /** Deletes in batches of 1000 (S3's limit); returns the keys S3 reported as not deleted. */
    async deleteMany(keys: string[]): Promise<{ failed: string[] }> {
      const failed: string[] = [];
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const res = await client.send(
          new DeleteObjectsCommand({
            Bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        for (const e of res.Errors ?? []) if (e.Key) failed.push(e.Key);
      }
      return { failed };
    },

    async list(
      prefix: string,
      cursor?: string,
      maxKeys = 1000,
    ): Promise<{ keys: ListedObject[]; nextCursor?: string }> {
      const res = await client.send(
        new ListObjectsV2Command({
          Bucket,
          Prefix: prefix,
          MaxKeys: maxKeys,
          ...(cursor ? { ContinuationToken: cursor } : {}),
        }),
      );
      const keys = (res.Contents ?? []).flatMap((o) =>
        o.Key
          ? [
              {
                key: o.Key,
                size: o.Size ?? 0,
                ...(o.LastModified ? { lastModified: o.LastModified } : {}),
                ...(o.ETag ? { etag: bareEtag(o.ETag) } : {}),
              },
            ]
          : [],
      );
      return {
        keys,
        ...(res.IsTruncated && res.NextContinuationToken ? { nextCursor: res.NextContinuationToken } : {}),
      };
    },

    async startMultipart(key: string, contentType: string): Promise<string> {
      const res = await client.send(
        new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: contentType, ...sseParams }),
      );
      if (!res.UploadId) throw new Error(`The bucket started no multipart upload of ${key}.`);
      return res.UploadId;
    },

    async presignPart(o: PresignPartOptions): Promise<string> {
      partSigner ??= new S3Client({
        ...base,
        ...(publicEndpoint ? { endpoint: publicEndpoint } : {}),
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });
      const command = new UploadPartCommand({
        Bucket,
        Key: o.key,
        UploadId: o.uploadId,
        PartNumber: o.partNumber,
        ContentLength: o.bytes,
      });
      return getSignedUrl(partSigner, command, { expiresIn: o.ttlSeconds });
    },

    async listParts(key: string, uploadId: string): Promise<UploadedPart[] | null> {
      const parts: UploadedPart[] = [];
      let marker: string | undefined;
      try {
        do {
          const res = await client.send(
            new ListPartsCommand({
              Bucket,
              Key: key,
              UploadId: uploadId,
              ...(marker ? { PartNumberMarker: marker } : {}),
            }),
          );
          for (const p of res.Parts ?? []) {
            if (p.PartNumber !== undefined && p.ETag)
              parts.push({ partNumber: p.PartNumber, size: p.Size ?? 0, etag: p.ETag });
          }
          marker = res.IsTruncated ? res.NextPartNumberMarker : undefined;
        } while (marker);
      } catch (err) {
        if (isNoSuchUpload(err)) return null;
        throw err;
      }
      return parts;
    },

    async completeMultipart(
      key: string,
      uploadId: string,
      parts: Pick<UploadedPart, 'partNumber' | 'etag'>[],
    ): Promise<{ etag?: string } | null> {
      try {
        const res = await client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
          }),
        );
        return res.ETag ? { etag: res.ETag } : {};
      } catch (err) {
        if (isNoSuchUpload(err)) return null;
        throw err;
      }
    },

    async abortMultipart(key: string, uploadId: string): Promise<void> {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }))
        .catch((err) => {
          if (!isNoSuchUpload(err)) throw err;
        });
    },

    /**
     * Reachable, and these credentials may list the app's prefix. Not HeadBucket: a least-privilege
     * policy that allows listing only under users/ refuses it.
     */
    async ping(): Promise<void> {
      await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'users/', MaxKeys: 1 }));
    },

    async bucketSettings(): Promise<BucketSettings> {
      const [encryption, versioning, publicAccessBlock] = await Promise.all([
        told(async () => {
          const res = await client.send(new GetBucketEncryptionCommand({ Bucket }));
          const rule = res.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault;
          if (!rule?.SSEAlgorithm) return null;
          return {
            algorithm: rule.SSEAlgorithm,
            ...(rule.KMSMasterKeyID ? { kmsKeyId: rule.KMSMasterKeyID } : {}),
          };
        }, 'ServerSideEncryptionConfigurationNotFoundError'),
        told(async () => (await client.send(new GetBucketVersioningCommand({ Bucket }))).Status ?? null),
        told(async () => {
          const c = (await client.send(new GetPublicAccessBlockCommand({ Bucket })))
            .PublicAccessBlockConfiguration;
          return {
            BlockPublicAcls: c?.BlockPublicAcls === true,
            IgnorePublicAcls: c?.IgnorePublicAcls === true,
            BlockPublicPolicy: c?.BlockPublicPolicy === true,
            RestrictPublicBuckets: c?.RestrictPublicBuckets === true,
          };
        }, 'NoSuchPublicAccessBlockConfiguration'),
      ]);
      return { encryption, versioning, publicAccessBlock };
    },
  };
  return storage;
}

/**
 * A bucket setting as read, or the error code that stopped it; `absent` is the code a bucket answers
 * when the setting was never made (read as null).
 */
async function told<T>(read: () => Promise<T>, absent?: string): Promise<Told<T | null>> {
  try {
    return { value: await read() };
  } catch (err) {
    const code =
      err instanceof S3ServiceException ? err.name : err instanceof Error ? err.message : String(err);
    return code === absent ? { value: null } : { error: code };
  }
}

/** S3_SSE as the SDK's PutObject and CopyObject parameters, and as a POST form's fields. */
function encryptionOf(encryption: StorageEncryption | undefined) {
  if (!encryption) return { sseParams: {}, sseFields: {} };
  const kms = encryption.type === 'aws:kms' ? encryption.kmsKeyId : undefined;
  return {
    sseParams: { ServerSideEncryption: encryption.type, ...(kms ? { SSEKMSKeyId: kms } : {}) },
    sseFields: {
      'x-amz-server-side-encryption': encryption.type,
      ...(kms ? { 'x-amz-server-side-encryption-aws-kms-key-id': kms } : {}),
    } as Record<string, string>,
  };
}

function isPreconditionFailed(err: unknown): boolean {
  return err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412;
}

function isNoSuchUpload(err: unknown): boolean {
  return err instanceof S3ServiceException && err.name === 'NoSuchUpload';
}

function isNoSuchKey(err: unknown): boolean {
  return err instanceof S3ServiceException && err.name === 'NoSuchKey';
}

function isUnsatisfiableRange(err: unknown): boolean {
  return err instanceof S3ServiceException && err.$metadata.httpStatusCode === 416;
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === 'NotFound')
  );
}

/** RFC 6266: an ASCII fallback plus the exact UTF-8 name, neither able to break out of the header. */
function attachment(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const utf8 = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}

const URL_CACHE_ENTRIES = 20_000;
/** Short, so a URL signed with temporary credentials is never handed out after they rotate. */
const URL_CACHE_MS = 5 * 60 * 1000;

/** Signing costs about a millisecond per URL; a gallery page has 60. Oldest entries go first. */
function createUrlCache(now: () => number) {
  const entries = new Map<string, { url: string; until: number }>();
  return {
    get(key: string): string | undefined {
      const hit = entries.get(key);
      if (!hit) return undefined;
      if (hit.until <= now()) {
        entries.delete(key);
        return undefined;
      }
      return hit.url;
    },
    set(key: string, url: string): void {
      if (entries.size >= URL_CACHE_ENTRIES) entries.delete(entries.keys().next().value as string);
      entries.set(key, { url, until: now() + URL_CACHE_MS });
    },
  };
}
