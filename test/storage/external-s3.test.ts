import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import { spawnStandalone } from '../../packages/s3-store/test/support.js';
import { createStorage } from '../../src/storage/s3.js';
import { defineStorageSuite } from './suite.js';

const env = process.env;
const isConfigured = Boolean(
  env.S3_TEST_ENDPOINT && env.S3_TEST_BUCKET && env.S3_TEST_ACCESS_KEY_ID && env.S3_TEST_SECRET_ACCESS_KEY,
);

// Set S3_TEST_ENDPOINT, S3_TEST_BUCKET, S3_TEST_ACCESS_KEY_ID, S3_TEST_SECRET_ACCESS_KEY (and optionally
// S3_TEST_REGION, S3_TEST_FORCE_PATH_STYLE=true) to run the same tests against a real S3.
describe.skipIf(!isConfigured)('the storage wrapper against an external S3 (S3_TEST_*)', () => {
  defineStorageSuite(async () => ({
    storage: createStorage({
      endpoint: env.S3_TEST_ENDPOINT as string,
      region: env.S3_TEST_REGION ?? 'us-east-1',
      bucket: env.S3_TEST_BUCKET as string,
      credentials: {
        accessKeyId: env.S3_TEST_ACCESS_KEY_ID as string,
        secretAccessKey: env.S3_TEST_SECRET_ACCESS_KEY as string,
      },
      forcePathStyle: env.S3_TEST_FORCE_PATH_STYLE === 'true',
    }),
    prefix: `s3-gallery-test/${randomUUID()}/`,
    close: async () => {},
  }));
});

// Without one, the same suite runs against a separate S3 endpoint: the s3-store command in its own
// process, at the root of its own port, as the app's external mode would reach any S3.
describe.skipIf(isConfigured)('the storage wrapper against a separate S3 endpoint (s3-store)', () => {
  defineStorageSuite(async () => {
    const store = await spawnStandalone();
    return {
      storage: createStorage({
        endpoint: store.endpoint,
        region: store.region,
        bucket: store.bucket,
        credentials: store.credentials,
        forcePathStyle: true,
      }),
      prefix: `s3-gallery-test/${randomUUID()}/`,
      close: async () => {
        await store.stop();
      },
    };
  });
});
