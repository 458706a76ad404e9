import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { badRequest } from './s3-errors.js';

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
