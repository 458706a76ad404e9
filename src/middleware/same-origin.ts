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
      const isForeignOrigin = origin !== undefined && origin !== appOrigin;
      const isForeignSite = site !== undefined && site !== 'same-origin' && site !== 'none';
      if (isForeignOrigin || (origin === undefined && isForeignSite)) {
        throw new HTTPException(403, { message: 'cross-site request' });
      }
    }
    await next();
  };
}
