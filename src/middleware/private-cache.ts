import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.js';

/**
 * What the app answers depends on who is signed in, so no cache may keep it (the browser's own
 * included, or Back after logging out shows the private page again). Only answers that say they are
 * `public` (static assets) keep their own Cache-Control.
 */
export const privateNoStore: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  // On the response's own headers, as secureHeaders does: c.header() here would copy the whole
  // response, turning a page's string body into a stream.
  if (!/\bpublic\b/i.test(c.res.headers.get('Cache-Control') ?? '')) {
    c.res.headers.set('Cache-Control', 'private, no-store');
  }
};
