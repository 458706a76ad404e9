import http from 'node:http';
import type { AddressInfo } from 'node:net';

const READS = new Set(['GET', 'HEAD']);

interface HeldRequest {
  forward(): Promise<number>;
}

/**
 * An HTTP proxy on a free loopback port in front of a store, which a test can make slow: after
 * `holdWrites()`, every request that would change the bucket is kept, whole, instead of being passed
 * on (after `holdRequestsFor(key)`, every request naming the key), so the test can act (kill the
 * app) while the app waits on the store.
 */
export async function startWriteHoldingProxy(targetOrigin: string) {
  const target = new URL(targetOrigin);
  /** Which requests are kept now (none, until a test says). */
  let isHeld: (req: http.IncomingMessage) => boolean = () => false;
  const held: HeldRequest[] = [];
  let firstHeld: (() => void) | undefined;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // A sender that goes away before its whole request arrived sent nothing the store should see.
    req.on('error', () => undefined);
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = () => send(target, req, body, res);
      if (isHeld(req)) {
        held.push({ forward });
        firstHeld?.();
        return;
      }
      void forward();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  function hold(which: (req: http.IncomingMessage) => boolean): Promise<void> {
    isHeld = which;
    return new Promise((resolve) => {
      firstHeld = resolve;
    });
  }

  return {
    origin: `http://127.0.0.1:${port}`,
    /** From now on, writes wait; resolves once the first one is held. */
    holdWrites(): Promise<void> {
      return hold((req) => !READS.has(req.method ?? 'GET'));
    },
    /** From now on, every request naming this key waits, reads too; resolves once the first one is held. */
    holdRequestsFor(key: string): Promise<void> {
      return hold((req) => (req.url ?? '').split('?')[0]?.endsWith(`/${key}`) ?? false);
    },
    /**
     * Passes on every held request, as a network would deliver what its sender finished sending
     * before it died, and stops holding; resolves with the store's status for each.
     */
    async release(): Promise<number[]> {
      isHeld = () => false;
      return Promise.all(held.splice(0).map((h) => h.forward()));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends one buffered request on to the store and its answer back, if anyone is still listening. */
function send(target: URL, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) {
  // The body is already whole: it goes with its length, and the store need not be asked to continue.
  const { expect: _expect, 'transfer-encoding': _chunked, ...headers } = req.headers;
  res.on('error', () => undefined);
  return new Promise<number>((resolve) => {
    const out = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...headers, 'content-length': String(body.length) },
        agent: false,
      },
      (answer) => {
        if (!res.destroyed) res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on('data', (c: Buffer) => {
          if (!res.destroyed) res.write(c);
        });
        answer.on('end', () => {
          if (!res.destroyed) res.end();
          resolve(answer.statusCode ?? 0);
        });
      },
    );
    out.on('error', () => {
      if (!res.destroyed) res.destroy();
      resolve(-1);
    });
    out.end(body);
  });
}
