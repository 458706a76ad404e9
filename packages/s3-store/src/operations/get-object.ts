import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { S3Error } from '../errors.js';
import { requireSendable, servedHeaders } from '../object-headers.js';
import { header, type S3Request } from '../request.js';

const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'Content-Type',
  'response-content-disposition': 'Content-Disposition',
  'response-cache-control': 'Cache-Control',
  'response-content-language': 'Content-Language',
  'response-expires': 'Expires',
  'response-content-encoding': 'Content-Encoding',
};

export const getObject = (r: S3Request) => serveObject(r, false);
export const headObject = (r: S3Request) => serveObject(r, true);

/** GetObject and HeadObject: conditional requests, one range, and the response-* overrides. */
async function serveObject({ req, res, store, key, query }: S3Request, isHead: boolean): Promise<void> {
  const object = await store.disk.open(key);
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
      // Objects are user content, maybe on an app's own origin: never let one run as a page.
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
