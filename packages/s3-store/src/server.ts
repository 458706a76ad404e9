import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AccessEntry, type AccessRecord, accessKeyIdOf, logWhenDone } from './access-log.js';
import { FormPrefixes } from './auth/form-prefixes.js';
import {
  type Access,
  createAuthenticator,
  type KeyLookup,
  NO_ACCESS,
  parseQuery,
  type QueryPairs,
  requireAccess,
  UNSIGNED_PAYLOAD,
} from './auth/sigv4.js';
import { MultipartUploads } from './disk/multipart.js';
import { DiskObjects, type StoreChange } from './disk/objects.js';
import { refuseEncryption } from './encryption.js';
import { accessDenied, S3Error, sendError } from './errors.js';
import { type FormRefusalPage, isBrowserFormPost, refusalOf, sendRefusalPage } from './form-refusal.js';
import { type Logger, stderrLogger } from './logger.js';
import {
  decodeKey,
  decodeSegment,
  header,
  noSuchBucket,
  notImplemented,
  queryValue,
  type S3Request,
  type Store,
  validateKey,
} from './request.js';
import { answerAndLinger, LINGER_MAX_BYTES, LINGER_MS } from './request-body.js';
import { findRoute, subresources } from './routes.js';

/** A multipart upload not completed or aborted within a day is aborted by the store. */
const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;
const STALE_CHECK_MS = 60 * 60 * 1000;

export interface S3ServerOptions {
  /** the directory objects live in; created if missing */
  root: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** the path the store answers under, e.g. "/s3" inside an app; "" when it has the whole host */
  mountPath?: string;
  /** the clock signatures and policies are checked against */
  now?: () => Date;
  /** where internal errors go (a pino logger fits); one JSON line on stderr by default */
  log?: Logger;
  /**
   * the id a request is answered (x-amz-request-id) and logged with: a server in front of the store
   * that has its own id for the request passes it, so one id names the request in both logs
   */
  requestId?: (req: IncomingMessage) => string;
  /** how long and how much the store reads of a request it refused early; tests shorten it */
  lingerAfterError?: { ms: number; maxBytes: number };
  /**
   * A page for a refused browser form upload (a navigation, not a script's request), instead of
   * S3's XML: a deviation from S3 an app may choose, so people who pressed Upload read why.
   */
  formRefusalPage?: FormRefusalPage;
  /**
   * Told of every object written (PUT, form POST, copy, completed multipart upload) or deleted, by
   * any client, once the change is on disk: an app that indexes the bucket keeps up without
   * listing it. A handler's error is its own (it must not throw).
   */
  onChange?: (change: StoreChange) => void;
  /**
   * One file per form prefix: a policy whose key condition is `starts-with` (a `${filename}` form)
   * stores one key under that prefix while the policy lives; a post with another name is refused
   * (403 AccessDenied). S3 stores any number: a deviation that only refuses, for an app that treats
   * each prefix as one upload and must bound what its forms can store.
   */
  oneKeyPerFormPrefix?: boolean;
  /**
   * Keys besides `credentials`, each limited to a prefix and perhaps to reads (an app's people's
   * own keys), looked up on every request so a revoked key stops at once.
   */
  keys?: KeyLookup;
  /** Told of every request once it is answered, with its access-log fields (an app audits its people's keys). */
  onAccess?: (entry: AccessEntry) => void;
}

export interface S3Server {
  mountPath: string;
  /** a Node request listener for requests under `mountPath` */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** settles once leftover temp files are swept (the key index builds on in the background) */
  ready: Promise<void>;
  /** answers new requests 503 and settles once those in flight have finished */
  close(): Promise<void>;
}

/**
 * A small S3-compatible server for one bucket, path-style: what an app and its users' S3 tools
 * need, authenticated like S3 (SigV4 headers, presigned URLs, POST policies).
 */
export function createS3Server(o: S3ServerOptions): S3Server {
  const mountPath = o.mountPath ?? '';
  const now = o.now ?? (() => new Date());
  const log = o.log ?? stderrLogger;
  const disk = new DiskObjects(o.root);
  disk.onChange = o.onChange;
  const ready = fs.mkdir(o.root, { recursive: true }).then(() => disk.init());
  const auth = createAuthenticator({ region: o.region, credentials: o.credentials, now, keys: o.keys });
  const multipart = new MultipartUploads(o.root, disk);
  const store: Store = {
    bucket: o.bucket,
    region: o.region,
    mountPath,
    disk,
    multipart,
    auth,
    now,
    ...(o.oneKeyPerFormPrefix ? { formPrefixes: new FormPrefixes() } : {}),
  };
  // Multipart uploads left unfinished for a day are aborted by the store itself (an hourly look).
  const abortStale = () =>
    void ready
      .then(() => multipart.abortStale(Date.now() - STALE_UPLOAD_MS))
      .catch((err: unknown) => log.error({ err }, 'S3 store: stale multipart uploads could not be aborted'));
  abortStale();
  const staleTimer = setInterval(abortStale, STALE_CHECK_MS);
  staleTimer.unref();
  const linger = o.lingerAfterError ?? { ms: LINGER_MS, maxBytes: LINGER_MAX_BYTES };
  const inFlight = new Set<Promise<void>>();
  let closing = false;

  async function serve(req: IncomingMessage, res: ServerResponse, record: AccessRecord): Promise<void> {
    const requestId = record.reqId;
    if (closing) throw new S3Error(503, 'ServiceUnavailable', 'The store is shutting down.');
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

    if (!bucket) throw accessDenied();
    if (bucket !== o.bucket) throw noSuchBucket();
    const on = rawKey ? 'object' : 'bucket';
    const route = findRoute(method, on, query, req);
    record.operation = route?.name ?? `REST.${method}.${on === 'bucket' ? 'BUCKET' : 'OBJECT'}`;
    record.accessKeyId = accessKeyIdOf(req);
    const request: S3Request = {
      req,
      res,
      store,
      requestId,
      key: '',
      query,
      payloadHash: UNSIGNED_PAYLOAD,
      access: NO_ACCESS,
      // The key the signature was checked with, not one read off the request again: a request may
      // carry several Credential= parts or differently cased parameters, and only one was checked.
      authenticated(access) {
        record.accessKeyId = access.accessKeyId;
        record.authenticated = true;
      },
    };
    if (route?.signedInBody) return route.operation(request);
    const { payloadHash, access } = await authenticate(req, rawPath, query);
    request.payloadHash = payloadHash;
    request.access = access;
    request.authenticated(access);
    // Asked for in a header, or in the query of a presigned URL that hoisted it (as S3 honours).
    const asked = new Map<string, string>(query.map(([k, v]) => [k.toLowerCase(), v]));
    for (const name of Object.keys(req.headers)) asked.set(name, header(req, name) ?? '');
    refuseEncryption(asked.keys(), (name) => asked.get(name));
    if (on === 'bucket') {
      if (!route) throw notImplemented();
      if (route.access === 'list') requireAccess(request.access, queryValue(query, 'prefix') ?? '', 'read');
      if (route.access === 'write-each' && request.access.writePrefix === null) throw accessDenied();
      return route.operation(request);
    }
    request.key = validateKey(decodeKey(rawKey));
    record.key = request.key;
    // A query names an operation (?acl, ?tagging…): only those a route takes are served.
    if (subresources(query).some(([k]) => !route?.params?.includes(k))) throw notImplemented();
    if (!route) {
      throw new S3Error(
        405,
        'MethodNotAllowed',
        'The specified method is not allowed against this resource.',
      );
    }
    if (route.access === 'read' || route.access === 'write')
      requireAccess(request.access, request.key, route.access);
    return route.operation(request);
  }

  async function authenticate(
    req: IncomingMessage,
    rawPath: string,
    query: QueryPairs,
  ): Promise<{ payloadHash: string; access: Access }> {
    if (req.headers.authorization) return auth.verifyHeader(req, rawPath, query);
    if (query.some(([k]) => k === 'X-Amz-Signature' || k === 'X-Amz-Algorithm')) {
      return { payloadHash: UNSIGNED_PAYLOAD, access: await auth.verifyQuery(req, rawPath, query) };
    }
    throw accessDenied();
  }

  /** The app's page for a refused form post; S3's XML when it cannot be made. */
  async function renderRefusal(
    render: FormRefusalPage,
    err: S3Error,
    req: IncomingMessage,
  ): Promise<string | null> {
    try {
      return await render(refusalOf(err, req));
    } catch (renderErr) {
      log.error({ err: renderErr }, 'S3 store: the refusal page could not be made');
      return null;
    }
  }

  return {
    mountPath,
    ready,
    handle(req, res) {
      const requestId = o.requestId?.(req) ?? randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase();
      const record: AccessRecord = {
        reqId: requestId,
        accessKeyId: '-',
        operation: '-',
        key: '-',
        errorCode: '-',
        authenticated: false,
      };
      const sinks = [
        ...(log.info ? [(entry: AccessEntry) => log.info?.({ ...entry }, 's3 access')] : []),
        ...(o.onAccess ? [o.onAccess] : []),
      ];
      if (sinks.length > 0) logWhenDone(req, res, record, sinks);
      const done = serve(req, res, record).catch((err: unknown) => {
        const s3err =
          err instanceof S3Error
            ? err
            : new S3Error(500, 'InternalError', 'We encountered an internal error. Please try again.');
        record.errorCode = s3err.code;
        if (!(err instanceof S3Error)) {
          log.error(
            { err, reqId: requestId, method: req.method, path: req.url?.split('?')[0] },
            'S3 store: internal error',
          );
        }
        // The client may still be sending: it reads this answer, not a reset (nginx's lingering close).
        const page =
          o.formRefusalPage && isBrowserFormPost(req) ? renderRefusal(o.formRefusalPage, s3err, req) : null;
        return Promise.resolve(page).then((html) =>
          answerAndLinger(
            req,
            res,
            () =>
              html === null
                ? sendError(res, s3err, req.url?.split('?')[0] ?? '/', requestId, req.method === 'HEAD')
                : sendRefusalPage(res, s3err.status, html),
            linger,
          ),
        );
      });
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
    },
    async close() {
      closing = true;
      clearInterval(staleTimer);
      await Promise.allSettled([ready, ...inFlight]);
    },
  };
}
