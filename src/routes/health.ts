import { Hono } from 'hono';
import type { AppEnv } from '../env.js';

export const healthRoutes = new Hono<AppEnv>();

healthRoutes.get('/healthz', (c) => {
  c.header('Cache-Control', 'no-store');
  try {
    c.var.services.checkDatabase();
    return c.json({ status: 'ok' });
  } catch (err) {
    c.var.log.error({ err }, 'health check: database failed');
    return c.json({ status: 'error', database: 'failed' }, 503);
  }
});
