import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import busboy from 'busboy';
import { AwsChunkedDecoder } from './aws-chunked.js';
import {
  checkCopyConditions,
  copyToItself,
  invalidCopySource,
  metadataDirective,
  parseCopySource,
} from './copy-source.js';
import { DiskObjects, type ObjectMeta } from './disk.js';
import {
  requireSendable,
  requireSendableFields,
  requireSendableMeta,
  servedHeaders,
} from './object-headers.js';
import { checkPolicy, parsePolicy } from './post-policy.js';
import { answerAndLinger, LINGER_MAX_BYTES, LINGER_MS, requestBody } from './request-body.js';
import {
  accessDenied,
  badRequest,
  S3Error,
  sendError,
  sendXml,
  xmlElements,
  xmlEscape,
} from './s3-errors.js';
import {
  type Authenticator,
  createAuthenticator,
  parseQuery,
  type QueryPairs,
  UNSIGNED_PAYLOAD,
} from './sigv4.js';

export interface EmbeddedStoreOptions {
  /** where objects live, e.g. DATA_DIR/objects */
  rootDir: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  mountPath?: string;
  now?: () => Date;
  /** how long and how much the store reads of a request it refused early; tests shorten it */
  lingerAfterError?: { ms: number; maxBytes: number };
}

export interface EmbeddedStore {
  mountPath: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** resolves once the key index is built; requests wait for it */
  ready: Promise<void>;
}

const MAX_PUT_BYTES = 5 * 1024 * 1024 * 1024;
const MAX_PRE_FILE_BYTES = 20 * 1024;
const MAX_XML_BYTES = 1024 * 1024;
const MAX_KEY_BYTES = 1024;
const FILENAME_PLACEHOLDER = '$' + '{filename}';

/**
 * A small S3-compatible server for one bucket, path-style, mounted on the app's own port. It
 * implements what the app and its users' S3 tools need, and authenticates everything like S3.
 */
export function createEmbeddedStore(o: EmbeddedStoreOptions): EmbeddedStore {
  const mountPath = o.mountPath ?? '/s3';
  const now = o.now ?? (() => new Date());
  const disk = new DiskObjects(o.rootDir);
  const ready = fs.mkdir(o.rootDir, { recursive: true }).then(() => disk.init());
  const auth = createAuthenticator({ region: o.region, credentials: o.credentials, now });
  const linger = o.lingerAfterError ?? { ms: LINGER_MS, maxBytes: LINGER_MAX_BYTES };

  async function serve(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    await ready;
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    const query = parseQuery(q < 0 ? '' : raw.slice(q + 1));
    const rest = rawPath.slice(mountPath.length).replace(/^\//, '');
    const slash = rest.indexOf('/');
    const bucket = decodeSegment(slash < 0 ? rest : rest.slice(0, slash));
    const rawKey = slash < 0 ? '' : rest.slice(slash + 1);
    const method = req.method ?? 'GET';
    const has = (name: string) => query.some(([k]) => k === name);

    if (!bucket) throw accessDenied();
    if (bucket !== o.bucket) throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist');

    // A browser form upload carries its authentication in the body.
    if (method === 'POST' && !rawKey && !has('delete') && !req.headers.authorization) {
      return postObject(req, res);
    }
    const payloadHash = await authenticate(auth, req, rawPath, query);

    if (!rawKey) {
      if (method === 'HEAD' && query.length === 0)
        return void res.writeHead(200, { 'x-amz-request-id': requestId }).end();
      if (method === 'GET' && query.some(([k, v]) => k === 'list-type' && v === '2'))
        return listObjects(res, query);
      if (method === 'POST' && has('delete')) return deleteObjects(req, res);
      throw notImplemented();
    }
    const key = validateKey(decodeKey(rawKey));
    const subresources = query.filter(
      ([k]) => !k.toLowerCase().startsWith('x-amz-') && !k.startsWith('response-') && k !== 'x-id',
    );
    if (subresources.length > 0) throw notImplemented();
    switch (method) {
      case 'PUT':
        if (req.headers['x-amz-copy-source'] !== undefined) return copyObject(req, res, key);
        return putObject(req, res, key, payloadHash);
      case 'GET':
      case 'HEAD':
        return getObject(req, res, key, query, method === 'HEAD');
      case 'DELETE':
        await disk.delete(key);
        return void res.writeHead(204, { 'x-amz-request-id': requestId }).end();
      default:
        throw new S3Error(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
        );
    }
  }

  async function putObject(req: IncomingMessage, res: ServerResponse, key: string, payloadHash: string) {
    let decoder: AwsChunkedDecoder | undefined;
    if (payloadHash === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') {
      decoder = new AwsChunkedDecoder({
        ...decodedLength(req),
        allowedTrailers: announcedTrailers(req),
      });
    } else if (payloadHash.startsWith('STREAMING-')) {
      throw notImplemented('Signed aws-chunked uploads are not supported by the embedded store.');
    } else if (payloadHash !== UNSIGNED_PAYLOAD && !/^[0-9a-f]{64}$/.test(payloadHash)) {
      throw badRequest(
        'InvalidArgument',
        'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, or a valid sha256 value.',
      );
    }
    for (const name of Object.keys(req.headers)) {
      if (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-crc32') {
        throw badRequest(
          'InvalidRequest',
          `The embedded store supports only CRC32 checksums, not ${name.slice(15)}.`,
        );
      }
    }
    const crcHeader = header(req, 'x-amz-checksum-crc32');
    const md5 = header(req, 'content-md5');
    const trailers = decoder?.trailers;
    const headers = objectHeaders(req);
    const meta = await disk.write(key, requestBody(req), {
      ...headers,
      maxBytes: MAX_PUT_BYTES,
      ...(decoder ? { decode: decoder } : {}),
      ...(/^[0-9a-f]{64}$/.test(payloadHash) ? { sha256: payloadHash } : {}),
      ...(crcHeader
        ? { crc32: crcHeader }
        : trailers
          ? { crc32: () => trailers.get('x-amz-checksum-crc32') }
          : {}),
      ...(md5 ? { md5 } : {}),
    });
    res
      .writeHead(200, { ETag: `"${meta.etag}"`, ...(crcHeader ? { 'x-amz-checksum-crc32': crcHeader } : {}) })
      .end();
  }

  /**
   * A server-side copy within the bucket. The source's header and bytes come from one open file, so
   * a replace racing the copy cannot mix versions; the target is written like any PUT (temp file,
   * fsync, rename).
   */
  async function copyObject(req: IncomingMessage, res: ServerResponse, key: string) {
    const source = parseCopySource(header(req, 'x-amz-copy-source') ?? '');
    if (source.bucket !== o.bucket)
      throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist');
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
    const object = await disk.open(sourceKey);
    if (!object) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: sourceKey });
    let meta: ObjectMeta;
    try {
      checkCopyConditions(req, object.meta, now());
      const { size } = object.meta;
      meta = await disk.write(key, size === 0 ? Readable.from([]) : object.read(0, size - 1), {
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

  async function getObject(
    req: IncomingMessage,
    res: ServerResponse,
    key: string,
    query: QueryPairs,
    isHead: boolean,
  ) {
    const object = await disk.open(key);
    if (!object) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
    try {
      const { meta } = object;
      const etag = `"${meta.etag}"`;
      const headers: Record<string, string | number> = {
        ETag: etag,
        'Last-Modified': new Date(meta.lastModified).toUTCString(),
        'Accept-Ranges': 'bytes',
        ...servedHeaders(meta),
        'X-Content-Type-Options': 'nosniff',
        // Objects are user content on the app's own origin: never let one run as a page.
        'Content-Security-Policy': "default-src 'none'; sandbox",
      };
      for (const [name, value] of query) {
        const target = RESPONSE_OVERRIDES[name];
        if (!target) continue;
        requireSendable(name, value);
        headers[target] = value;
      }
      const ifNoneMatch = header(req, 'if-none-match');
      const ifMatch = header(req, 'if-match');
      if (ifMatch && ifMatch !== etag && ifMatch !== '*') {
        throw new S3Error(
          412,
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
      }
      if (ifNoneMatch && (ifNoneMatch === etag || ifNoneMatch === '*')) {
        res.writeHead(304, { ETag: etag }).end();
        return;
      }
      const range = parseRange(header(req, 'range'), meta.size);
      if (range === 'invalid') {
        throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', {
          ActualObjectSize: meta.size,
        });
      }
      const [start, end] = range ?? [0, meta.size - 1];
      headers['Content-Length'] = Math.max(0, end - start + 1);
      if (range) headers['Content-Range'] = `bytes ${start}-${end}/${meta.size}`;
      res.writeHead(range ? 206 : 200, headers);
      if (isHead || meta.size === 0) {
        res.end();
        return;
      }
      await streamTo(object.read(start, end), res);
    } finally {
      await object.close();
    }
  }

  async function deleteObjects(req: IncomingMessage, res: ServerResponse) {
    const body = await readBody(req, MAX_XML_BYTES);
    const crc = header(req, 'x-amz-checksum-crc32');
    const md5 = header(req, 'content-md5');
    if (crc !== undefined) {
      const expected = Buffer.alloc(4);
      expected.writeUInt32BE(zlib.crc32(body) >>> 0);
      if (expected.toString('base64') !== crc)
        throw badRequest('BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
    } else if (md5 !== undefined) {
      if (createHash('md5').update(body).digest('base64') !== md5) {
        throw badRequest('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
    } else {
      throw badRequest('InvalidRequest', 'Missing required header for this request: Content-MD5');
    }
    const xml = body.toString('utf8');
    if (!/^\s*(<\?xml[^>]*\?>\s*)?<Delete[\s>]/.test(xml))
      throw badRequest('MalformedXML', 'The XML you provided was not well-formed.');
    const keys = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => xmlUnescape(m[1] as string));
    if (keys.length > 1000) throw badRequest('MalformedXML', 'You may delete at most 1000 objects at once.');
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(xml);
    const deleted: string[] = [];
    const errors: string[] = [];
    for (const key of keys) {
      try {
        await disk.delete(validateKey(key));
        deleted.push(key);
      } catch (err) {
        const e =
          err instanceof S3Error
            ? err
            : new S3Error(500, 'InternalError', 'We encountered an internal error.');
        errors.push(`<Error>${xmlElements({ Key: key, Code: e.code, Message: e.message })}</Error>`);
      }
    }
    const deletedXml = quiet
      ? ''
      : deleted.map((k) => `<Deleted><Key>${xmlEscape(k)}</Key></Deleted>`).join('');
    sendXml(
      res,
      200,
      `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${deletedXml}${errors.join('')}</DeleteResult>`,
    );
  }

  async function listObjects(res: ServerResponse, query: QueryPairs) {
    const get = (name: string) => query.find(([k]) => k === name)?.[1];
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
    await disk.indexed;
    const page = disk.list({ prefix, startAfter, maxKeys, delimiter });
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
      Name: o.bucket,
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

  /** Browser form upload: fields first, then exactly one file, all checked against the signed policy. */
  function postObject(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = header(req, 'content-type') ?? '';
    if (!type.toLowerCase().startsWith('multipart/form-data')) {
      throw badRequest(
        'MalformedPOSTRequest',
        'The body of your POST request is not well-formed multipart/form-data.',
      );
    }
    return new Promise<void>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: req.headers,
          limits: {
            fields: 100,
            fieldSize: MAX_PRE_FILE_BYTES,
            fieldNameSize: 256,
            files: 1,
            parts: 102,
            headerPairs: 100,
          },
        });
      } catch {
        reject(
          badRequest(
            'MalformedPOSTRequest',
            'The body of your POST request is not well-formed multipart/form-data.',
          ),
        );
        return;
      }
      const fields = new Map<string, string>();
      let preFileBytes = 0;
      let sawFile = false;
      let settled = false;
      let activeFile: Readable | undefined;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        // The rest of the body is read and dropped by the error answer's lingering close.
        req.unpipe(parser);
        // The file stream would otherwise wait for bytes that never come, keeping its temp file.
        activeFile?.destroy();
        reject(err);
      };
      parser.on('field', (name, value) => {
        if (sawFile) return; // S3 ignores whatever follows the file
        preFileBytes += name.length + value.length;
        if (preFileBytes > MAX_PRE_FILE_BYTES) {
          fail(
            badRequest(
              'MaxPostPreDataLengthExceededError',
              'Your POST request fields preceding the upload file were too large.',
            ),
          );
          return;
        }
        const lower = name.toLowerCase();
        if (fields.has(lower)) {
          fail(badRequest('InvalidArgument', `POST requires exactly one value for field ${name}.`));
          return;
        }
        fields.set(lower, value);
      });
      parser.on('file', (_name, file, info) => {
        sawFile = true;
        activeFile = file;
        // Errors reach the consuming pipeline through the stream's state; this only covers the gap before it starts.
        file.on('error', () => {});
        storeUpload(fields, file, info.filename ?? '').then(
          (result) => {
            if (settled) return;
            settled = true;
            respondToPost(res, result);
            resolve();
          },
          (err) => {
            file.resume();
            fail(err);
          },
        );
      });
      parser.on('filesLimit', () =>
        fail(
          badRequest(
            'IncorrectNumberOfFilesInPostRequest',
            'POST requires exactly one file upload per request.',
          ),
        ),
      );
      parser.on('error', () =>
        fail(
          badRequest(
            'MalformedPOSTRequest',
            'The body of your POST request is not well-formed multipart/form-data.',
          ),
        ),
      );
      parser.on('close', () => {
        if (!sawFile)
          fail(
            badRequest(
              'IncorrectNumberOfFilesInPostRequest',
              'POST requires exactly one file upload per request.',
            ),
          );
      });
      req.on('close', () => {
        if (!req.complete) fail(badRequest('IncompleteBody', 'The request body terminated unexpectedly'));
      });
      req.pipe(parser);
    });
  }

  async function storeUpload(fields: Map<string, string>, file: Readable, filename: string) {
    const require = (name: string) => {
      const value = fields.get(name);
      if (value === undefined) {
        throw badRequest(
          'InvalidArgument',
          `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`,
        );
      }
      return value;
    };
    const policyText = require('policy');
    await auth.verifyPolicy({
      policy: policyText,
      credential: require('x-amz-credential'),
      amzDate: require('x-amz-date'),
      algorithm: require('x-amz-algorithm'),
      signature: require('x-amz-signature'),
    });
    const rawKey = require('key');
    const baseName = filename.split(/[\\/]/).pop() ?? '';
    // S3's literal ${filename} placeholder, not a template string.
    const key = validateKey(rawKey.replaceAll(FILENAME_PLACEHOLDER, baseName));
    const checked = new Map(fields);
    checked.set('key', key);
    checked.set('bucket', o.bucket);
    const range = checkPolicy(parsePolicy(policyText), checked, now());
    requireSendableFields(fields);
    const metadata: Record<string, string> = {};
    for (const [name, value] of fields) {
      if (name.startsWith('x-amz-meta-')) metadata[name.slice(11)] = value;
    }
    const md5 = fields.get('content-md5');
    const meta = await disk.write(key, file, {
      contentType: fields.get('content-type') ?? 'binary/octet-stream',
      metadata,
      minBytes: range.min,
      maxBytes: range.max,
      ...(md5 ? { md5 } : {}),
    });
    return { meta, fields };
  }

  function respondToPost(
    res: ServerResponse,
    { meta, fields }: { meta: ObjectMeta; fields: Map<string, string> },
  ) {
    const etag = `"${meta.etag}"`;
    const location = `${mountPath}/${o.bucket}/${encodeURIComponent(meta.key)}`;
    const redirect = fields.get('success_action_redirect') ?? fields.get('redirect');
    if (redirect && !/[\r\n]/.test(redirect) && URL.canParse(redirect)) {
      const target = new URL(redirect);
      target.searchParams.append('bucket', o.bucket);
      target.searchParams.append('key', meta.key);
      target.searchParams.append('etag', etag);
      res.writeHead(303, { Location: target.toString(), ETag: etag }).end();
      return;
    }
    const status = fields.get('success_action_status');
    if (status === '201') {
      sendXml(
        res,
        201,
        `<PostResponse>${xmlElements({ Location: location, Bucket: o.bucket, Key: meta.key, ETag: etag })}</PostResponse>`,
        { ETag: etag, Location: location },
      );
      return;
    }
    res.writeHead(status === '200' ? 200 : 204, { ETag: etag, Location: location }).end();
  }

  return {
    mountPath,
    ready,
    handle(req, res) {
      const requestId = randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase();
      serve(req, res, requestId).catch((err: unknown) => {
        const s3err =
          err instanceof S3Error
            ? err
            : new S3Error(500, 'InternalError', 'We encountered an internal error. Please try again.');
        if (!(err instanceof S3Error)) console.error('embedded store:', err);
        // The client may still be sending: it reads this answer, not a reset (nginx's lingering close).
        answerAndLinger(
          req,
          res,
          () => sendError(res, s3err, req.url?.split('?')[0] ?? '/', requestId, req.method === 'HEAD'),
          linger,
        );
      });
    },
  };
}

const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'Content-Type',
  'response-content-disposition': 'Content-Disposition',
  'response-cache-control': 'Cache-Control',
  'response-content-language': 'Content-Language',
  'response-expires': 'Expires',
  'response-content-encoding': 'Content-Encoding',
};

async function authenticate(
  auth: Authenticator,
  req: IncomingMessage,
  rawPath: string,
  query: QueryPairs,
): Promise<string> {
  if (req.headers.authorization) return auth.verifyHeader(req, rawPath, query);
  if (query.some(([k]) => k === 'X-Amz-Signature' || k === 'X-Amz-Algorithm')) {
    await auth.verifyQuery(req, rawPath, query);
    return UNSIGNED_PAYLOAD;
  }
  throw accessDenied();
}

function notImplemented(
  message = 'A header or query you provided implies functionality that is not implemented.',
) {
  return new S3Error(501, 'NotImplemented', message);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** x-amz-decoded-content-length: what an aws-chunked body must decode to. */
function decodedLength(req: IncomingMessage): { decodedLength?: number } {
  const value = header(req, 'x-amz-decoded-content-length');
  if (value === undefined) return {};
  if (!/^\d{1,16}$/.test(value))
    throw badRequest('InvalidArgument', 'x-amz-decoded-content-length must be a number of bytes.');
  const bytes = Number(value);
  // Refused before a byte is read rather than once 5 GiB have been.
  if (bytes > MAX_PUT_BYTES) {
    throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      MaxSizeAllowed: MAX_PUT_BYTES,
    });
  }
  return { decodedLength: bytes };
}

/** x-amz-trailer: the trailers an aws-chunked body may end with; only a CRC32 is checked here. */
function announcedTrailers(req: IncomingMessage): Set<string> {
  const names = (header(req, 'x-amz-trailer') ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  for (const name of names) {
    if (name !== 'x-amz-checksum-crc32') {
      throw badRequest('InvalidRequest', `The embedded store supports only CRC32 checksums, not ${name}.`);
    }
  }
  return new Set(names);
}

/** The type and user metadata a PUT or a REPLACE copy gives the object, refused if they could not be served. */
function objectHeaders(req: IncomingMessage): { contentType: string; metadata: Record<string, string> } {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') metadata[name.slice(11)] = value;
  }
  const contentType = header(req, 'content-type') ?? 'binary/octet-stream';
  requireSendableMeta(contentType, metadata);
  return { contentType, metadata };
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badRequest('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** Percent-escapes decoded exactly once; invalid UTF-8 is refused, never replaced. */
function decodeKey(raw: string): string {
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

function xmlUnescape(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e] ?? '';
  });
}

function parseRange(value: string | undefined, size: number): [number, number] | null | 'invalid' {
  if (!value) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // S3 ignores a range it cannot parse
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'invalid';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'invalid';
  return [start, end];
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw badRequest('MaxMessageLengthExceeded', 'Your request was too big.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function streamTo(source: Readable, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => resolve();
    source.on('error', () => {
      res.destroy();
      done();
    });
    res.on('close', () => {
      source.destroy();
      done();
    });
    source.pipe(res);
  });
}

export interface EmbeddedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
}

/** Generated on first start and kept in DATA_DIR/embedded-s3.json (mode 0600) for S3 tools to use too. */
export async function loadOrCreateEmbeddedCredentials(dataDir: string): Promise<EmbeddedCredentials> {
  const file = path.join(dataDir, 'embedded-s3.json');
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as EmbeddedCredentials;
    if (parsed.accessKeyId && parsed.secretAccessKey && parsed.region && parsed.bucket) return parsed;
    throw new Error(`${file} is missing a field; delete it to generate new credentials`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const creds: EmbeddedCredentials = {
    accessKeyId: `S3G${randomBytes(10).toString('hex').toUpperCase().slice(0, 17)}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
    region: 'us-east-1',
    bucket: 'gallery',
  };
  await fs.mkdir(dataDir, { recursive: true });
  try {
    await fs.writeFile(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process won the race to create it: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateEmbeddedCredentials(dataDir);
    throw err;
  }
  return creds;
}
