import type { Config } from './config.js';
import { type EmbeddedCredentials, loadOrCreateEmbeddedCredentials } from './storage/embedded-store.js';
import type { StorageOptions } from './storage/s3.js';

export const EMBEDDED_MOUNT = '/s3';

/** A host as it goes in a URL: IPv6 literals in brackets. */
export const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);

/** The embedded store as this process reaches it: over loopback for the server, through APP_ORIGIN for browsers. */
export function embeddedStorageOptions(
  config: Config,
  creds: EmbeddedCredentials,
  port: number,
): StorageOptions {
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host;
  return {
    endpoint: `http://${urlHost(host)}:${port}${EMBEDDED_MOUNT}`,
    publicEndpoint: `${config.appOrigin}${EMBEDDED_MOUNT}`,
    region: creds.region,
    bucket: creds.bucket,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    forcePathStyle: true,
  };
}

/** How a process other than the server (the CLI) reaches the bucket: the configured S3 or the running app's store. */
export async function storageOptions(config: Config): Promise<StorageOptions> {
  if (config.s3) return config.s3;
  return embeddedStorageOptions(config, await loadOrCreateEmbeddedCredentials(config.dataDir), config.port);
}
