import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.js';

/**
 * What the app answers depends on who is signed in, so no cache may keep it (the browser's own
 * included, or Back after logging out shows the private page again). Only answers that say they are
 * `public` (static assets) keep their own Cache-Control.
 */
export const privateNoStore: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (!/\bpublic\b/i.test(c.res.headers.get('Cache-Control') ?? '')) {
    c.header('Cache-Control', 'private, no-store');
  }
};
