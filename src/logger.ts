import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type Logger, pino } from 'pino';

/** The one logger of a running server: every part logs through it or a child of it (JSON lines). */
export function createLogger(level: string): Logger {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}

// Ids are read or made once per request, so the app and the HTTP server's deadlines log the same one.
const requestIds = new WeakMap<IncomingMessage, string>();
// hono/request-id's rule for an id a proxy sent: word characters, '-' and '=', at most 255 of them.
const isUsableId = (id: string | string[] | undefined): id is string =>
  typeof id === 'string' && id.length > 0 && id.length <= 255 && /^[\w\-=]+$/.test(id);

/** The X-Request-Id a trusted proxy sent, when it looks like an id; otherwise a new one. */
export function chooseRequestId(given: string | string[] | undefined, trustProxy: boolean): string {
  return trustProxy && isUsableId(given) ? given : randomUUID();
}

/**
 * The request's id: the X-Request-Id a trusted proxy set (TRUST_PROXY), when it looks like one, or a
 * new one. Without a proxy the header is the client's own word, which must not name log lines.
 */
export function requestIdOf(req: IncomingMessage, trustProxy: boolean): string {
  let id = requestIds.get(req);
  if (id === undefined) {
    id = chooseRequestId(req.headers['x-request-id'], trustProxy);
    requestIds.set(req, id);
  }
  return id;
}
