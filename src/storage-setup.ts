import type { Config } from './config.js';
import { loadOrCreateEmbeddedCredentials } from './storage/embedded-store.js';
import type { StorageOptions } from './storage/s3.js';

export const EMBEDDED_MOUNT = '/s3';

/**
 * How this process reaches the bucket: the configured S3, or the embedded store that the app
 * serves on its own port (the server talks to it over loopback, browsers through APP_ORIGIN).
 */
export async function storageOptions(config: Config, port = config.port): Promise<StorageOptions> {
  if (config.s3) return config.s3;
  const creds = await loadOrCreateEmbeddedCredentials(config.dataDir);
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host;
  return {
    endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${port}${EMBEDDED_MOUNT}`,
    publicEndpoint: `${config.appOrigin}${EMBEDDED_MOUNT}`,
    region: creds.region,
    bucket: creds.bucket,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    forcePathStyle: true,
  };
}
