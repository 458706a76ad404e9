import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { PrefixClaim } from '../auth/form-prefixes.js';
import { checkPolicy, type Policy, parsePolicy } from '../auth/post-policy.js';
import { requireAccess } from '../auth/sigv4.js';
import type { ObjectMeta } from '../disk/objects.js';
import { refuseEncryption } from '../encryption.js';
import { accessDenied, badRequest, sendXml, xmlElements } from '../errors.js';
import { requireSendableFields } from '../object-headers.js';
import { header, type S3Request, type Store, validateKey } from '../request.js';

const MAX_PRE_FILE_BYTES = 20 * 1024;
// S3's literal ${filename} placeholder, not a template string.
const FILENAME_PLACEHOLDER = '$' + '{filename}';

const malformed = () =>
  badRequest('MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
const oneFile = () =>
  badRequest('IncorrectNumberOfFilesInPostRequest', 'POST requires exactly one file upload per request.');

/**
 * PostObject, a browser form upload: its authentication is in the body (a signed policy), so it is
 * routed before any header signature is looked for. Fields first, then exactly one file, all
 * checked against the policy.
 */
export function postObject({ req, res, store, authenticated }: S3Request): Promise<void> {
  const type = header(req, 'content-type') ?? '';
  if (!type.toLowerCase().startsWith('multipart/form-data')) throw malformed();
  return new Promise<void>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // Browsers send a file's name as UTF-8 bytes (HTML's form encoding); busboy reads Latin-1 unless told.
        defParamCharset: 'utf8',
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
      reject(malformed());
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
      storeUpload(store, fields, file, info.filename ?? '', authenticated).then(
        (meta) => {
          if (settled) return;
          settled = true;
          respond(res, store, meta, fields);
          resolve();
        },
        (err) => {
          file.resume();
          fail(err);
        },
      );
    });
    parser.on('filesLimit', () => fail(oneFile()));
    parser.on('error', () => fail(malformed()));
    parser.on('close', () => {
      if (!sawFile) fail(oneFile());
    });
    req.on('close', () => {
      if (!req.complete) fail(badRequest('IncompleteBody', 'The request body terminated unexpectedly'));
    });
    req.pipe(parser);
  });
}

async function storeUpload(
  store: Store,
  fields: Map<string, string>,
  file: Readable,
  filename: string,
  authenticated: S3Request['authenticated'],
): Promise<ObjectMeta> {
  const required = (name: string) => {
    const value = fields.get(name);
    if (value === undefined) {
      throw badRequest(
        'InvalidArgument',
        `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`,
      );
    }
    return value;
  };
  const policyText = required('policy');
  const access = await store.auth.verifyPolicy({
    policy: policyText,
    credential: required('x-amz-credential'),
    amzDate: required('x-amz-date'),
    algorithm: required('x-amz-algorithm'),
    signature: required('x-amz-signature'),
  });
  const baseName = filename.split(/[\\/]/).pop() ?? '';
  const key = validateKey(required('key').replaceAll(FILENAME_PLACEHOLDER, baseName));
  const checked = new Map(fields);
  authenticated(access);
  requireAccess(access, key, 'write');
  checked.set('key', key);
  checked.set('bucket', store.bucket);
  const policy = parsePolicy(policyText);
  const now = store.now();
  const range = checkPolicy(policy, checked, now);
  requireSendableFields(fields);
  refuseEncryption(fields.keys(), (name) => fields.get(name));
  const metadata: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (name.startsWith('x-amz-meta-')) metadata[name.slice(11)] = value;
  }
  const md5 = fields.get('content-md5');
  const claim = claimFormPrefix(store, policy, key, now);
  try {
    const meta = await store.disk.write(key, file, {
      contentType: fields.get('content-type') ?? 'binary/octet-stream',
      metadata,
      minBytes: range.min,
      maxBytes: range.max,
      ...(md5 ? { md5 } : {}),
    });
    claim?.stored();
    return meta;
  } finally {
    claim?.failed(); // nothing was stored (a no-op once stored): another name may be posted
  }
}

/**
 * On a store that keeps a `${filename}` form to one file: claims the policy's key prefix for this
 * key (another name is refused). Null when the policy names no prefix, or the store keeps any number.
 */
function claimFormPrefix(store: Store, policy: Policy, key: string, now: Date): PrefixClaim | null {
  const prefix = policy.conditions.find((c) => c.kind === 'starts-with' && c.field === 'key');
  if (!store.formPrefixes || prefix?.kind !== 'starts-with') return null;
  const claim = store.formPrefixes.claim(prefix.value, key, policy.expiration.getTime(), now.getTime());
  if (!claim) {
    throw accessDenied(
      'Invalid according to Policy: a file under another name was already stored through this form; this store keeps one per form.',
    );
  }
  return claim;
}

/** success_action_redirect (303 with bucket, key and etag), success_action_status 200/201, or 204. */
function respond(res: ServerResponse, store: Store, meta: ObjectMeta, fields: Map<string, string>): void {
  const etag = `"${meta.etag}"`;
  const location = `${store.mountPath}/${store.bucket}/${encodeURIComponent(meta.key)}`;
  const redirect = fields.get('success_action_redirect') ?? fields.get('redirect');
  if (redirect && !/[\r\n]/.test(redirect) && URL.canParse(redirect)) {
    const target = new URL(redirect);
    target.searchParams.append('bucket', store.bucket);
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
      `<PostResponse>${xmlElements({ Location: location, Bucket: store.bucket, Key: meta.key, ETag: etag })}</PostResponse>`,
      { ETag: etag, Location: location },
    );
    return;
  }
  res.writeHead(status === '200' ? 200 : 204, { ETag: etag, Location: location }).end();
}
