import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { escapeUri } from '@smithy/core/protocols';
import { Hash } from '@smithy/hash-node';
import { getCanonicalQuery, SignatureV4 } from '@smithy/signature-v4';
import { accessDenied, badRequest, S3Error } from '../errors.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * A key other than the store's own (a person's, from the app that runs the store): its secret, and
 * what it may touch. The store's own key may touch everything.
 */
export interface KeyGrant {
  secretAccessKey: string;
  /** the keys it may read and list start with this ('' for the whole bucket) */
  readPrefix: string;
  /** the keys it may write (put, copy to, delete) start with this; null: it writes nothing */
  writePrefix: string | null;
  /** it writes only keys directly under writePrefix (no further `/`) */
  flatWrites?: boolean;
  /** the largest object it may write (a PUT, a copy, a multipart upload's parts together) */
  maxObjectBytes?: number;
  /** how many multipart uploads it may have in progress under writePrefix */
  maxOpenUploads?: number;
}

/** Finds a key the store's own credentials do not name; undefined when there is none (or it was revoked). */
export type KeyLookup = (accessKeyId: string) => Promise<KeyGrant | undefined>;

/** What a request's signature lets it do, and the key id that signature was checked against. */
export type Access = Pick<
  KeyGrant,
  'readPrefix' | 'writePrefix' | 'flatWrites' | 'maxObjectBytes' | 'maxOpenUploads'
> & { accessKeyId: string };
/** A request not (yet) authenticated: it reads nothing (no key holds a NUL) and writes nothing. */
export const NO_ACCESS: Access = { accessKeyId: '-', readPrefix: '\u0000', writePrefix: null };

/** What a key with a size limit is told when it writes more. */
export function tooLargeFor(access: Access): S3Error {
  return new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
    MaxSizeAllowed: access.maxObjectBytes ?? 0,
  });
}

/** A request may read a key only under its key's read prefix, and write one only under its write prefix. */
export function requireAccess(access: Access, key: string, kind: 'read' | 'write'): void {
  const prefix = kind === 'read' ? access.readPrefix : access.writePrefix;
  if (prefix === null || !key.startsWith(prefix)) throw accessDenied();
  if (kind === 'write' && access.flatWrites && key.slice(prefix.length).includes('/')) throw accessDenied();
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 60 * 60;
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export type QueryPairs = [string, string][];

/** Parses "20261125T031000Z"; null when it is not exactly that shape. */
function parseAmzDate(value: string | undefined): Date | null {
  const m = value && /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? null : date;
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badRequest('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** S3's canonical URI: each byte of the decoded path encoded once; no dot-segment removal. */
export function canonicalPath(rawPath: string): string {
  return rawPath
    .split('/')
    .map((segment) => escapeUri(decodeComponent(segment)))
    .join('/');
}

export function parseQuery(rawQuery: string): QueryPairs {
  if (!rawQuery) return [];
  return rawQuery.split('&').map((part) => {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    return [decodeComponent(name), decodeComponent(value)];
  });
}

function queryMap(pairs: QueryPairs): Record<string, string | string[]> {
  const map: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    const existing = map[k];
    map[k] = existing === undefined ? v : Array.isArray(existing) ? [...existing, v] : [existing, v];
  }
  return map;
}

function canonicalHeaders(req: IncomingMessage, signed: string[]): string {
  return signed
    .map((name) => {
      const values = req.headersDistinct[name] ?? [];
      return `${name}:${values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',')}\n`;
    })
    .join('');
}

/** Constant-time, and only after checking the shape, so lengths never differ. */
function requireSameSignature(expected: string, given: string): void {
  if (/^[0-9a-f]{64}$/.test(given) && timingSafeEqual(Buffer.from(expected), Buffer.from(given))) return;
  throw new S3Error(
    403,
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided.',
  );
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  /** the signer for the key's secret */
  signer: SignatureV4;
  access: Access;
}

const unknownKey = () =>
  new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
/** Signers kept for other keys, by id and secret; forgotten all at once past this many. */
const MAX_SIGNERS = 1000;

/**
 * Verifies S3 requests the way S3 does. The canonical request is built here (S3's rules for path,
 * query and headers); key derivation and the HMAC are smithy's, the signer the AWS SDK itself uses.
 */
export function createAuthenticator(o: {
  region: string;
  credentials: Credentials;
  now: () => Date;
  keys?: KeyLookup | undefined;
}) {
  const signerFor = (credentials: Credentials) =>
    new SignatureV4({
      service: 's3',
      region: o.region,
      credentials,
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: false,
    });
  const signer = signerFor(o.credentials);
  const signers = new Map<string, SignatureV4>();

  /** The store's own key, or one the lookup knows; InvalidAccessKeyId for any other. */
  async function keyNamed(accessKeyId: string): Promise<{ signer: SignatureV4; access: Access }> {
    if (accessKeyId === o.credentials.accessKeyId)
      return { signer, access: { accessKeyId, readPrefix: '', writePrefix: '' } };
    const grant = accessKeyId ? await o.keys?.(accessKeyId) : undefined;
    if (!grant) throw unknownKey();
    const id = `${accessKeyId}\n${grant.secretAccessKey}`;
    let found = signers.get(id);
    if (!found) {
      if (signers.size >= MAX_SIGNERS) signers.clear();
      found = signerFor({ accessKeyId, secretAccessKey: grant.secretAccessKey });
      signers.set(id, found);
    }
    const { secretAccessKey: _, ...limits } = grant;
    return { signer: found, access: { accessKeyId, ...limits } };
  }

  async function checkScope(credential: string, onMalformed: () => S3Error): Promise<Scope> {
    const parts = credential.split('/');
    if (parts.length !== 5) throw onMalformed();
    const [accessKeyId, date, region, service, terminator] = parts as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (service !== 's3' || terminator !== 'aws4_request' || !/^\d{8}$/.test(date)) throw onMalformed();
    if (region !== o.region) {
      throw badRequest(
        'AuthorizationHeaderMalformed',
        `The authorization header is malformed; the region '${region}' is wrong; expecting '${o.region}'`,
      );
    }
    return { accessKeyId, date, region, ...(await keyNamed(accessKeyId)) };
  }

  async function signatureFor(scope: Scope, stringToSign: string, signingDate: Date): Promise<string> {
    return scope.signer.sign(stringToSign, { signingDate });
  }

  interface Signed {
    req: IncomingMessage;
    rawPath: string;
    query: QueryPairs;
    signed: string[];
    payloadHash: string;
    amzDate: string;
    scope: Scope;
    signingDate: Date;
  }

  async function requireValidSignature(
    { req, rawPath, query, signed, payloadHash, amzDate, scope, signingDate }: Signed,
    given: string,
  ): Promise<void> {
    const canonicalRequest = [
      req.method ?? 'GET',
      canonicalPath(rawPath),
      getCanonicalQuery({ query: queryMap(query) } as Parameters<typeof getCanonicalQuery>[0]),
      canonicalHeaders(req, signed),
      signed.join(';'),
      payloadHash,
    ].join('\n');
    const stringToSign = [
      ALGORITHM,
      amzDate,
      `${scope.date}/${scope.region}/s3/aws4_request`,
      createHash('sha256').update(canonicalRequest).digest('hex'),
    ].join('\n');
    requireSameSignature(await signatureFor(scope, stringToSign, signingDate), given);
  }

  function checkUnsignedAmzHeaders(req: IncomingMessage, signed: string[]): void {
    for (const name of Object.keys(req.headers)) {
      if (name.startsWith('x-amz-') && !signed.includes(name)) {
        throw accessDenied('There were headers present in the request which were not signed');
      }
    }
  }

  return {
    /** Authorization-header auth; returns the payload hash the body must then match, and what the key may do. */
    async verifyHeader(
      req: IncomingMessage,
      rawPath: string,
      query: QueryPairs,
    ): Promise<{ payloadHash: string; access: Access }> {
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith(`${ALGORITHM} `)) {
        throw badRequest(
          'InvalidRequest',
          'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.',
        );
      }
      const malformed = () =>
        badRequest('AuthorizationHeaderMalformed', 'The authorization header is malformed.');
      const fields = Object.fromEntries(
        auth
          .slice(ALGORITHM.length + 1)
          .split(',')
          .map((p) => p.trim().split('=', 2) as [string, string]),
      );
      const credential = fields.Credential;
      const signedHeaders = fields.SignedHeaders;
      const signature = fields.Signature;
      if (!credential || !signedHeaders || !signature) throw malformed();
      const scope = await checkScope(credential, malformed);
      const signed = signedHeaders.split(';');
      if (!signed.includes('host')) throw malformed();
      const amzDateHeader = req.headers['x-amz-date'];
      const amzDate = typeof amzDateHeader === 'string' ? amzDateHeader : '';
      const signingDate = parseAmzDate(amzDate);
      if (!signingDate || !amzDate.startsWith(scope.date)) throw malformed();
      if (Math.abs(o.now().getTime() - signingDate.getTime()) > MAX_SKEW_MS) {
        throw new S3Error(
          403,
          'RequestTimeTooSkewed',
          'The difference between the request time and the current time is too large.',
        );
      }
      const payloadHash = req.headers['x-amz-content-sha256'];
      if (typeof payloadHash !== 'string' || !payloadHash) {
        throw badRequest('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
      }
      checkUnsignedAmzHeaders(req, signed);
      await requireValidSignature(
        { req, rawPath, query, signed, payloadHash, amzDate, scope, signingDate },
        signature,
      );
      return { payloadHash, access: scope.access };
    },

    /** Query-string auth: presigned URLs. Returns what the key may do. */
    async verifyQuery(req: IncomingMessage, rawPath: string, query: QueryPairs): Promise<Access> {
      const get = (name: string) => query.find(([k]) => k === name)?.[1];
      const malformed = () =>
        badRequest(
          'AuthorizationQueryParametersError',
          'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
        );
      if (get('X-Amz-Algorithm') !== ALGORITHM) throw malformed();
      const credential = get('X-Amz-Credential');
      const amzDate = get('X-Amz-Date');
      const expires = get('X-Amz-Expires');
      const signedHeaders = get('X-Amz-SignedHeaders');
      const signature = get('X-Amz-Signature');
      if (!credential || !amzDate || !expires || !signedHeaders || !signature) throw malformed();
      const scope = await checkScope(credential, malformed);
      const signingDate = parseAmzDate(amzDate);
      const ttl = Number(expires);
      if (!signingDate || !amzDate.startsWith(scope.date) || !/^\d+$/.test(expires)) throw malformed();
      if (ttl > MAX_PRESIGN_SECONDS) {
        throw badRequest(
          'AuthorizationQueryParametersError',
          'X-Amz-Expires must be less than a week (in seconds) that is 604800',
        );
      }
      const now = o.now().getTime();
      if (now > signingDate.getTime() + ttl * 1000) throw accessDenied('Request has expired');
      if (signingDate.getTime() - now > MAX_SKEW_MS) throw accessDenied('Request is not valid yet');
      const signed = signedHeaders.split(';');
      if (!signed.includes('host')) throw malformed();
      checkUnsignedAmzHeaders(req, signed);
      const unsigned = query.filter(([k]) => k !== 'X-Amz-Signature');
      await requireValidSignature(
        { req, rawPath, query: unsigned, signed, payloadHash: UNSIGNED_PAYLOAD, amzDate, scope, signingDate },
        signature,
      );
      return scope.access;
    },

    /** A POST form's signature: the HMAC of the base64 policy exactly as received. Returns what the key may do. */
    async verifyPolicy(fields: {
      policy: string;
      credential: string;
      amzDate: string;
      algorithm: string;
      signature: string;
    }) {
      const malformed = () =>
        badRequest(
          'InvalidArgument',
          'Bucket POST must contain valid X-Amz-Credential, X-Amz-Date and X-Amz-Algorithm fields.',
        );
      if (fields.algorithm !== ALGORITHM) throw malformed();
      const scope = await checkScope(fields.credential, malformed);
      const signingDate = parseAmzDate(fields.amzDate);
      if (!signingDate || !fields.amzDate.startsWith(scope.date)) throw malformed();
      requireSameSignature(await signatureFor(scope, fields.policy, signingDate), fields.signature);
      return scope.access;
    },
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;
