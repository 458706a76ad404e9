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

/** The request's id: the X-Request-Id a proxy set, when it looks like one, or a new one. */
export function requestIdOf(req: IncomingMessage): string {
  let id = requestIds.get(req);
  if (id === undefined) {
    const given = req.headers['x-request-id'];
    id = isUsableId(given) ? given : randomUUID();
    requestIds.set(req, id);
  }
  return id;
}
