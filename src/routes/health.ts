import { Hono } from 'hono';
import type { AppEnv } from '../env.js';

export const healthRoutes = new Hono<AppEnv>();

/**
 * 200 while the app can serve: "ok", or "degraded" when the bucket does not answer (galleries and
 * logins still work from SQLite). 503 only when the database fails, since then nothing works.
 */
healthRoutes.get('/healthz', async (c) => {
  c.header('Cache-Control', 'no-store');
  try {
    await c.var.services.checkDatabase();
  } catch (err) {
    c.var.log.error({ err }, 'health check: database failed');
    return c.json({ status: 'error', database: 'failed', databaseKind: c.var.services.databaseKind }, 503);
  }
  const [storageOk, processing] = await Promise.all([
    c.var.services.checkStorage(),
    c.var.services.processingStatus(),
  ]);
  if (!storageOk) c.var.log.warn('health check: storage unreachable');
  return c.json({
    status: storageOk ? 'ok' : 'degraded',
    database: 'ok',
    databaseKind: c.var.services.databaseKind,
    storage: storageOk ? 'ok' : 'unreachable',
    // The renditions queue: a long or old queue is worth a look, not a failed check.
    processing,
  });
});
