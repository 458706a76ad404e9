import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EMBEDDED_BUCKET, EMBEDDED_MOUNT } from '../../src/storage/embedded.js';
import { makeTestApp, signUp } from './app.js';

/** What the proxy does with one request: pass it on (after `hold`, if any), or answer it itself. */
interface ProxyDecision {
  answer?: { status: number; body: string };
  /** the request waits for this before it is passed on */
  hold?: Promise<void>;
  /** called once the store's answer has been sent back */
  done?: () => void;
  /** the store's answer body is passed back changed (an S3 that answers differently, say) */
  rewrite?: (body: string) => string;
}

/**
 * A small HTTP proxy in front of a real store, for faults and observations the store itself
 * never produces: an error for one key, a slow answer, a count of requests in flight. Requests
 * pass through unchanged (Host included), so SigV4 signatures made for the proxy's address hold.
 */
export async function startStoreInterceptor(mountPath = EMBEDDED_MOUNT) {
  let target: URL | undefined;
  let decide: (req: http.IncomingMessage) => ProxyDecision | undefined = () => undefined;
  const server = http.createServer(async (req, res) => {
    const decision = decide(req) ?? {};
    if (decision.answer) {
      req.resume();
      res
        .writeHead(decision.answer.status, { 'Content-Type': 'application/xml' })
        .end(req.method === 'HEAD' ? undefined : decision.answer.body);
      return;
    }
    if (decision.hold) await decision.hold;
    if (!target) {
      res.destroy();
      return;
    }
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: false,
      },
      (answer) => {
        const { rewrite } = decision;
        if (!rewrite) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.from(rewrite(Buffer.concat(chunks).toString()));
          const { 'transfer-encoding': _, ...headers } = answer.headers;
          res.writeHead(answer.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
          res.end(body);
        });
      },
    );
    res.on('close', () => decision.done?.());
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}${mountPath}`,
    /** the store's origin, e.g. http://127.0.0.1:1234 */
    forwardTo(origin: string) {
      target = new URL(origin);
    },
    onRequest(fn: (req: http.IncomingMessage) => ProxyDecision | undefined) {
      decide = fn;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The bucket key a request names, as the store decodes it (path-style: /s3/<bucket>/<key>). */
export function keyOf(
  req: http.IncomingMessage,
  bucket = EMBEDDED_BUCKET,
  mountPath = EMBEDDED_MOUNT,
): string {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const prefix = `${mountPath}/${bucket}/`;
  return path.startsWith(prefix) ? decodeURIComponent(path.slice(prefix.length)) : '';
}

/** S3's answer for a store that failed reading an object. */
export const INTERNAL_ERROR = {
  status: 500,
  body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>',
};

/** The intercepted app's renditions workers. */
export const WORKERS = 2;

/**
 * A test app whose storage goes through an interceptor in front of its own store, with one member
 * signed in. `close` stops both.
 */
export async function makeInterceptedApp(email = 'alice@example.com', env: Record<string, string> = {}) {
  const proxy = await startStoreInterceptor();
  // Two workers, whatever the machine: tests count how many originals are read at once.
  const t = await makeTestApp({
    env: { ...env, S3_ENDPOINT: proxy.endpoint, PROCESSING_WORKERS: String(WORKERS) },
  });
  proxy.forwardTo(t.store.origin);
  const client = t.client();
  await signUp(client, email);
  return {
    t,
    proxy,
    client,
    userId: (await t.user(email)).id,
    async close() {
      await t.close();
      await proxy.close();
    },
  };
}
