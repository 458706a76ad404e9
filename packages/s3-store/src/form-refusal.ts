import type { IncomingMessage, ServerResponse } from 'node:http';
import type { S3Error } from './errors.js';

/**
 * A browser form's upload the store refused, as a page the app renders (S3 answers every error in
 * XML, which a person who pressed Upload sees raw, with no way back): what the app needs to say why.
 */
export interface FormRefusal {
  status: number;
  /** S3's error code: EntityTooLarge, EntityTooSmall, AccessDenied… */
  code: string;
  message: string;
  /** for EntityTooLarge: the most the form's policy allowed */
  maxSizeAllowed?: number;
  /** the page the form was on, as the browser sent it (Referer): any site may send any value */
  referer?: string;
}

/** Renders the page for a refusal; its HTML is answered as it is. */
export type FormRefusalPage = (refusal: FormRefusal) => string | Promise<string>;

/**
 * A form post a browser navigates with (a plain HTML form, JavaScript off), not a script's request
 * (fetch and XHR say `Sec-Fetch-Mode: cors`) or a tool's: those keep S3's XML.
 */
export function isBrowserFormPost(req: IncomingMessage): boolean {
  if (
    req.method !== 'POST' ||
    !(req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')
  )
    return false;
  const mode = req.headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  return (req.headers.accept ?? '').includes('text/html');
}

export function refusalOf(err: S3Error, req: IncomingMessage): FormRefusal {
  const max = Number(err.extra.MaxSizeAllowed);
  const referer = req.headers.referer;
  return {
    status: err.status,
    code: err.code,
    message: err.message,
    ...(Number.isFinite(max) ? { maxSizeAllowed: max } : {}),
    ...(referer ? { referer } : {}),
  };
}

/** The page, in place of the XML error: the same status; nothing on it runs or loads from elsewhere. */
export function sendRefusalPage(res: ServerResponse, status: number, html: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    'Content-Security-Policy':
      "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    'Referrer-Policy': 'same-origin',
  });
  res.end(html);
}
