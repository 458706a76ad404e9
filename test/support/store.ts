import type { AccessEntry, KeyLookup, StoreChange } from '@s3-gallery/s3-store';
import { startStore } from '../../packages/s3-store/test/support.js';
import { EMBEDDED_BUCKET, EMBEDDED_MOUNT } from '../../src/storage/embedded.js';
import { createStorage } from '../../src/storage/s3.js';

/**
 * A real embedded store on a free loopback port, in a fresh temp dir, with a clock tests can move
 * (the store package's own test store, mounted and named as the app mounts it), and the app's
 * storage client on it; `client` is the AWS SDK's own, for calls the app's client does not make.
 */
export async function startTestStore(
  o: {
    onChange?: (change: StoreChange) => void;
    keys?: KeyLookup;
    onAccess?: (entry: AccessEntry) => void;
  } = {},
) {
  const store = await startStore({
    ...o,
    bucket: EMBEDDED_BUCKET,
    mountPath: EMBEDDED_MOUNT,
    credentials: { accessKeyId: 'S3GTESTKEY', secretAccessKey: 'test-secret-key-for-the-embedded-store' },
  });
  const { endpoint, region, bucket, credentials } = store;
  return {
    ...store,
    storage: createStorage({ endpoint, region, bucket, credentials, forcePathStyle: true }),
  };
}
