import type { ServerResponse } from 'node:http';

/** An S3 error answer: status, code and message as AWS spells them. */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

export const accessDenied = (message = 'Access Denied') => new S3Error(403, 'AccessDenied', message);
export const badRequest = (code: string, message: string) => new S3Error(400, code, message);

export function xmlEscape(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function xmlElements(fields: Record<string, string | number | undefined>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<${k}>${xmlEscape(String(v))}</${k}>`)
    .join('');
}

export function sendXml(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  res.writeHead(status, {
    'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(xml),
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(xml);
}

export function sendError(
  res: ServerResponse,
  err: S3Error,
  resource: string,
  requestId: string,
  isHead: boolean,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (isHead) {
    res.writeHead(err.status, { 'x-amz-request-id': requestId, 'X-Content-Type-Options': 'nosniff' }).end();
    return;
  }
  const body = `<Error>${xmlElements({ Code: err.code, Message: err.message, ...err.extra, Resource: resource, RequestId: requestId })}</Error>`;
  // No "Connection: close": Node would then cut the connection as soon as the answer is out, while
  // the client may still be sending; the store reads the rest for a bounded time instead.
  sendXml(res, err.status, body, { 'x-amz-request-id': requestId });
}
