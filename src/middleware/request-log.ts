import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.js';

/** One JSON line per request. The query string is left out: it can carry invite tokens. */
export const requestLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = performance.now();
  await next();
  c.var.log.info({
    msg: 'request',
    method: c.req.method,
    path: c.req.path,
    status: c.res.status,
    ms: Math.round((performance.now() - started) * 10) / 10,
    user: c.var.user?.id,
  });
};
