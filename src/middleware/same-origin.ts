import type { MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AppEnv } from '../env.js';

/**
 * Hono's csrf() looks only at form-like content types. This refuses every other state change a
 * browser marks as coming from elsewhere too (JSON, any content type), so no route depends on
 * CORS preflights for its safety.
 */
export function sameOriginOnly(appOrigin: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!['GET', 'HEAD', 'OPTIONS'].includes(c.req.method)) {
      const origin = c.req.header('origin');
      const site = c.req.header('sec-fetch-site');
      const isForeignSite = site !== undefined && site !== 'same-origin' && site !== 'none';
      // Pages sent with Referrer-Policy: no-referrer (public share pages) post with Origin: null;
      // then only the browser's own Sec-Fetch-Site, which no page can forge, can vouch for them.
      const isTrusted =
        origin === appOrigin ||
        (origin === undefined && !isForeignSite) ||
        (origin === 'null' && site === 'same-origin');
      if (!isTrusted) {
        throw new HTTPException(403, { message: 'cross-site request' });
      }
    }
    await next();
  };
}
