import path from 'node:path';
import {
  type AccessEntry,
  createS3Server,
  type FormRefusalPage,
  type KeyLookup,
  type Logger,
  loadOrCreateCredentials,
  type S3Server,
  type StoreChange,
  type StoreCredentials,
} from '@s3-gallery/s3-store';
import type { Config } from '../config.js';
import { requestIdOf } from '../logger.js';
import type { StorageOptions } from './s3.js';

/**
 * The embedded store as this app runs it: the one place that knows its mount path, its bucket's
 * name and where its credentials and objects live in DATA_DIR.
 */
export const EMBEDDED_MOUNT = '/s3';
export const EMBEDDED_BUCKET = 'gallery';
const REGION = 'us-east-1';

/** A host as it goes in a URL: IPv6 literals in brackets. */
export const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);

/** Whether a request's URL is one for the store (the mount path itself, or under it). */
export const isEmbeddedRequest = (url: string | undefined) =>
  url === EMBEDDED_MOUNT || url?.startsWith(`${EMBEDDED_MOUNT}/`) || url?.startsWith(`${EMBEDDED_MOUNT}?`);

/** Where objects live; the doctor and the health probe look at it too. */
export const objectsDir = (config: Pick<Config, 'dataDir'>) => path.join(config.dataDir, 'objects');

/** The key that seals people's S3 secrets (services/secret-box.ts): in DATA_DIR, never in the database. */
export const accessKeyFile = (config: Pick<Config, 'dataDir'>) =>
  path.join(config.dataDir, 'access-keys.key');

/** Generated on first start and kept in DATA_DIR/embedded-s3.json (mode 0600) for S3 tools to use too. */
export function embeddedCredentials(config: Pick<Config, 'dataDir'>): Promise<StoreCredentials> {
  return loadOrCreateCredentials(path.join(config.dataDir, 'embedded-s3.json'), {
    bucket: EMBEDDED_BUCKET,
    region: REGION,
  });
}

/** The store itself, answering under EMBEDDED_MOUNT; its internal errors go to the app's log. */
export function createEmbeddedStore(
  config: Config,
  creds: StoreCredentials,
  log: Logger,
  o: {
    formRefusalPage?: FormRefusalPage;
    /** told of every change to the bucket, whoever made it (the live pickup of outside changes) */
    onChange?: (change: StoreChange) => void;
    /** people's own keys (services/access-keys.ts) */
    keys?: KeyLookup;
    /** told of every request once answered (requests made with people's keys are audited) */
    onAccess?: (entry: AccessEntry) => void;
  } = {},
): S3Server {
  return createS3Server({
    root: objectsDir(config),
    bucket: creds.bucket,
    region: creds.region,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    mountPath: EMBEDDED_MOUNT,
    log,
    requestId: (req) => requestIdOf(req, config.trustProxy),
    // A person's plain-form upload that the store refuses reads like the app, with a way back.
    ...(o.formRefusalPage ? { formRefusalPage: o.formRefusalPage } : {}),
    ...(o.onChange ? { onChange: o.onChange } : {}),
    ...(o.keys ? { keys: o.keys } : {}),
    ...(o.onAccess ? { onAccess: o.onAccess } : {}),
    // A plain form's upload is one file under its prefix: what one form can store stays bounded.
    oneKeyPerFormPrefix: true,
  });
}

/** The embedded store as this process reaches it: over loopback for the server, through APP_ORIGIN for browsers. */
export function embeddedStorageOptions(
  config: Config,
  creds: StoreCredentials,
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
  return embeddedStorageOptions(config, await embeddedCredentials(config), config.port);
}
