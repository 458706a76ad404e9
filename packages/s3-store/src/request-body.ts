import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { badRequest } from './errors.js';

/**
 * After an early answer (a refused policy, a malformed body), the rest of the request is read and
 * dropped for at most this long and this much, as nginx's lingering close does: a client still
 * sending then reads the answer instead of a reset. Enough for a photo-sized body on a slow link.
 */
export const LINGER_MS = 5_000;
export const LINGER_MAX_BYTES = 32 * 1024 * 1024;

/**
 * The request's body as a stream a pipeline may destroy without destroying the request: that would
 * cut the connection before the error answer is sent. A client that hangs up mid-body ends it with
 * IncompleteBody, since piping does not pass that on.
 */
export function requestBody(req: IncomingMessage): Readable {
  const body = new PassThrough({ highWaterMark: 64 * 1024 });
  const onClose = () => {
    if (!req.complete) body.destroy(badRequest('IncompleteBody', 'The request body terminated unexpectedly'));
  };
  if (req.destroyed) onClose();
  else req.once('close', onClose);
  body.once('close', () => {
    req.off('close', onClose);
    req.unpipe(body);
  });
  // Its errors reach whoever consumes it; this only covers a body an early refusal never consumed.
  body.on('error', () => {});
  req.pipe(body);
  return body;
}

/**
 * Sends an answer to a request whose body may still be arriving, then reads and drops the rest
 * within `limits` and cuts the connection if the body goes on longer. A body that ends in time
 * leaves the connection as the client asked for it: usable, or closed after the answer.
 */
export function answerAndLinger(
  req: IncomingMessage,
  res: ServerResponse,
  send: () => void,
  limits: { ms: number; maxBytes: number },
): void {
  if (req.complete || req.destroyed) {
    send();
    req.resume(); // what the server already holds of the body: nothing left on the wire
    return;
  }
  // Without this, Node closes a connection whose client said "Connection: close" as soon as the
  // answer is out, unread bytes and all: a reset that can reach the client before the answer does.
  const wantsClose = !res.shouldKeepAlive;
  res.shouldKeepAlive = true;
  send();
  let bytes = 0;
  const stop = () => {
    clearTimeout(timer);
    req.off('data', count);
    req.off('end', ended);
    req.off('close', stop);
  };
  const ended = () => {
    stop();
    if (wantsClose) req.socket.end();
  };
  const cut = () => {
    stop();
    req.destroy(); // an unfinished request takes its connection with it
  };
  const count = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limits.maxBytes) cut();
  };
  const timer = setTimeout(cut, limits.ms);
  timer.unref();
  req.unpipe();
  req.on('data', count);
  req.once('end', ended);
  req.once('close', stop);
  req.resume();
}
