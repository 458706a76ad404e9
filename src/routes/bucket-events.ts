import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppEnv } from '../env.js';
import { NotFound, TooLarge } from '../services/errors.js';

/** SNS messages and MinIO events are small; a bucket's event is well under this. */
const MAX_EVENT_BYTES = 256 * 1024;

/**
 * An external bucket's event notifications (see services/bucket-events.ts): AWS S3 through SNS at
 * /events/s3/sns, MinIO's webhook at /events/s3/minio. Mounted before the browser's CSRF checks:
 * servers post here, with their own proof (a signature, a token), and no Origin.
 */
export const bucketEventRoutes = new Hono<AppEnv>();

bucketEventRoutes.use(
  bodyLimit({
    maxSize: MAX_EVENT_BYTES,
    onError: () => {
      throw new TooLarge('That event is too large.');
    },
  }),
);

bucketEventRoutes.post('/sns', async (c) => {
  const events = c.var.services.bucketEvents;
  if (!events.snsEnabled) throw new NotFound('No SNS topic is configured (S3_EVENTS_SNS_TOPIC_ARN).');
  return c.json(await events.fromSns(await c.req.text()));
});

bucketEventRoutes.post('/minio', async (c) => {
  const events = c.var.services.bucketEvents;
  if (!events.minioEnabled) throw new NotFound('No webhook token is configured (S3_EVENTS_TOKEN).');
  return c.json(events.fromMinio(c.req.header('authorization'), await c.req.text()));
});
