import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { xmlElements } from './errors.js';

/**
 * S3's answer to a body that stopped arriving or took too long (400 RequestTimeout), for the HTTP
 * server in front of the store to send when it cuts such a request.
 */
export function requestTimeoutAnswer(req: IncomingMessage): {
  status: number;
  headers: Record<string, string>;
  body: string;
} {
  const requestId = randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase();
  const error = xmlElements({
    Code: 'RequestTimeout',
    Message:
      'Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.',
    Resource: req.url?.split('?')[0] ?? '/',
    RequestId: requestId,
  });
  return {
    status: 400,
    headers: {
      'Content-Type': 'application/xml',
      'x-amz-request-id': requestId,
      'X-Content-Type-Options': 'nosniff',
    },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${error}</Error>`,
  };
}
