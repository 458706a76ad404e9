import type { Readable } from 'node:stream';

/** One setting as the bucket told it, or why it could not be read (its error code: AccessDenied, NotImplemented…). */
export type Told<T> = { value: T } | { error: string };

export interface BucketSettings {
  /** the default encryption rule's algorithm and KMS key, null when the bucket has none */
  encryption: Told<{ algorithm: string; kmsKeyId?: string } | null>;
  /** 'Enabled', 'Suspended', or null: never enabled */
  versioning: Told<string | null>;
  /** the four switches of the public-access block, null when none is set */
  publicAccessBlock: Told<Record<
    'BlockPublicAcls' | 'IgnorePublicAcls' | 'BlockPublicPolicy' | 'RestrictPublicBuckets',
    boolean
  > | null>;
}

/** Server-side encryption for every object the app writes (S3_SSE, S3_SSE_KMS_KEY_ID). */
export type StorageEncryption = { type: 'AES256' } | { type: 'aws:kms'; kmsKeyId?: string };

/**
 * What the services need of a bucket. One implementation, S3 through the AWS SDK (./s3.ts), serves
 * AWS, MinIO, R2, Garage and the embedded store alike; tests put interceptors in front of a real
 * store rather than fakes behind this interface.
 */
export interface Storage {
  readonly bucket: string;
  /** A browser form upload of exactly one key, with size, type and expiry pinned by the policy. */
  presignPost(o: PresignPostOptions): Promise<{ url: string; fields: Record<string, string> }>;
  presignGet(o: PresignGetOptions): Promise<string>;
  /** null when there is no such object */
  head(key: string): Promise<ObjectInfo | null>;
  getRange(key: string, start: number, endInclusive: number): Promise<Uint8Array>;
  /**
   * The first `length` bytes (fewer if the object is shorter) with what the bucket says of the whole
   * object, all of one version in one request; null when there is no such object.
   */
  readStart(key: string, length: number): Promise<{ bytes: Uint8Array; info: ObjectInfo } | null>;
  /**
   * The whole object as a stream, for a reader that never holds it whole in memory. With `ifMatch`,
   * only if it still has that ETag, else SourceChanged.
   */
  getStream(key: string, o?: { ifMatch?: string }): Promise<Readable>;
  /** A stream body needs its length. */
  put(
    key: string,
    body: Uint8Array | Readable,
    contentType: string,
    contentLength?: number,
  ): Promise<{ etag?: string }>;
  /**
   * A server-side copy within the bucket (type and metadata kept). With `ifMatch`, only if the
   * source still has that ETag, else SourceChanged.
   */
  copy(sourceKey: string, destKey: string, o?: { ifMatch?: string }): Promise<{ etag?: string }>;
  delete(key: string): Promise<void>;
  /** Returns the keys the bucket reported as not deleted. */
  deleteMany(keys: string[]): Promise<{ failed: string[] }>;
  list(
    prefix: string,
    cursor?: string,
    maxKeys?: number,
  ): Promise<{ keys: ListedObject[]; nextCursor?: string }>;
  /** Starts a multipart upload of `key` (a browser's upload in parts); its upload id. */
  startMultipart(key: string, contentType: string): Promise<string>;
  /**
   * A URL a browser PUTs one part to: its length is signed (the Content-Length header), so the
   * part is exactly `bytes` long or refused.
   */
  presignPart(o: PresignPartOptions): Promise<string>;
  /** The parts the bucket holds of a multipart upload, by number; null when there is no such upload. */
  listParts(key: string, uploadId: string): Promise<UploadedPart[] | null>;
  /** Joins the parts named into the object; null when there is no such upload (joined, or aborted). */
  completeMultipart(
    key: string,
    uploadId: string,
    parts: Pick<UploadedPart, 'partNumber' | 'etag'>[],
  ): Promise<{ etag?: string } | null>;
  /** Drops a multipart upload and its parts; one already gone is not an error. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** Reachable, and these credentials may list the app's prefix. */
  ping(): Promise<void>;
  /** What the bucket says of its default encryption, versioning and public-access block (the doctor's report). */
  bucketSettings(): Promise<BucketSettings>;
}

export interface PresignPostOptions {
  key: string;
  maxBytes: number;
  minBytes?: number;
  contentTypePrefix: string;
  redirect?: string;
  status?: 200 | 201 | 204;
  ttlSeconds: number;
}

/** A script's upload is answered 201 with the stored object's XML, which names its ETag (204 is empty). */
export const SCRIPT_ANSWER = { status: 201 } as const satisfies Pick<PresignPostOptions, 'status'>;

export interface PresignPartOptions {
  key: string;
  uploadId: string;
  partNumber: number;
  bytes: number;
  ttlSeconds: number;
}

export interface UploadedPart {
  partNumber: number;
  size: number;
  /** as the bucket spells it (quoted) */
  etag: string;
}

export interface PresignGetOptions {
  key: string;
  ttlSeconds: number;
  /** a file name: the response says Content-Disposition: attachment with it */
  download?: string;
  contentType?: string;
  /** callers round it so the same URL repeats and browsers cache it */
  signingDate?: Date;
}

export interface ObjectInfo {
  size: number;
  contentType?: string;
  etag?: string;
  lastModified?: Date;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified?: Date;
  /** bare (see bareEtag), when the bucket lists one */
  etag?: string;
}

/**
 * ETags compare without their quotes (S3 quotes them in headers, not always in redirect URLs) and
 * their case, so no store's spelling refuses a file as another one.
 */
export const bareEtag = (etag: string) => etag.replace(/^"|"$/g, '').toLowerCase();

/** A conditional copy's source no longer has the ETag it named (it was written again since). */
export class SourceChanged extends Error {
  constructor(
    readonly sourceKey: string,
    /** what the bucket answered */
    cause: unknown,
  ) {
    super(`${sourceKey} changed since its ETag was read`, { cause });
  }
}

/** A lone surrogate: half of a character, which no UTF-8 key can hold. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Whether a key is one a bucket could hold (S3's rules, as the embedded store applies them): UTF-8,
 * at most 1,024 bytes, no control characters, no "." or ".." segment. A key from a request that is
 * none of these names nothing, and asking the bucket about it would only be an error.
 */
export function isStorableKey(key: string): boolean {
  return (
    key.length > 0 &&
    !LONE_SURROGATE.test(key) &&
    Buffer.byteLength(key) <= 1024 &&
    !CONTROL.test(key) &&
    !key.split(/[/\\]/).some((segment) => segment === '.' || segment === '..')
  );
}
