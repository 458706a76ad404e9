import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * One request as S3's server access log records it (the fields people read: time, requester's key
 * id, operation, key, status, error code, bytes sent, total time), logged once its
 * answer has been sent or the connection dropped. Filled in as the request is understood.
 */
export interface AccessRecord {
  reqId: string;
  /** the key id the request was signed with (as read off it until its signature is checked), '-' for none */
  accessKeyId: string;
  /** S3's names: REST.GET.OBJECT, REST.PUT.PART, REST.POST.UPLOAD… */
  operation: string;
  key: string;
  errorCode: string;
  /** set once the request's signature (header or presigned URL) checked out */
  authenticated: boolean;
}

/** The key id of a SigV4 `Authorization` header or presigned URL; '-' when there is none. */
export function accessKeyIdOf(req: IncomingMessage): string {
  const auth = req.headers.authorization ?? '';
  const fromHeader = /Credential=([^/,\s]+)\//.exec(auth)?.[1];
  if (fromHeader) return fromHeader;
  const url = req.url ?? '';
  const fromQuery = /[?&]X-Amz-Credential=([^&%]+)(?:%2F|\/)/i.exec(url)?.[1];
  return fromQuery ? decodeURIComponent(fromQuery) : '-';
}

/** One access-log line's fields. */
export interface AccessEntry {
  reqId: string;
  remoteIp: string;
  accessKeyId: string;
  operation: string;
  key: string;
  requestUri: string;
  status: number | '-';
  errorCode: string;
  bytesSent: number;
  totalTimeMs: number;
  userAgent: string;
  completed: boolean;
  /** whether its signature checked out: only then was it made with `accessKeyId` */
  authenticated: boolean;
}

/** Hands the record to each sink once the answer is out (or the client has gone). */
export function logWhenDone(
  req: IncomingMessage,
  res: ServerResponse,
  record: AccessRecord,
  sinks: ((entry: AccessEntry) => void)[],
): void {
  const started = process.hrtime.bigint();
  // The body's bytes as they go out: operations set their headers in writeHead, which getHeader cannot read.
  let bytesSent = 0;
  const count = (chunk: unknown) => {
    if (typeof chunk === 'string') bytesSent += Buffer.byteLength(chunk);
    else if (chunk instanceof Uint8Array) bytesSent += chunk.byteLength;
  };
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    count(chunk);
    return write(chunk, ...rest);
  }) as ServerResponse['write'];
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== 'function') count(chunk);
    return end(chunk, ...rest);
  }) as ServerResponse['end'];
  let logged = false;
  const log = () => {
    if (logged) return;
    logged = true;
    const entry: AccessEntry = {
      reqId: record.reqId,
      remoteIp: req.socket.remoteAddress ?? '-',
      accessKeyId: record.accessKeyId,
      operation: record.operation,
      key: record.key,
      requestUri: `${req.method} ${(req.url ?? '/').split('?')[0]}`,
      status: res.headersSent ? res.statusCode : '-',
      errorCode: record.errorCode,
      bytesSent,
      totalTimeMs: Number((process.hrtime.bigint() - started) / 1_000_000n),
      userAgent: req.headers['user-agent'] ?? '-',
      completed: res.writableFinished,
      authenticated: record.authenticated,
    };
    for (const sink of sinks) sink(entry);
  };
  res.once('finish', log);
  res.once('close', log);
}
