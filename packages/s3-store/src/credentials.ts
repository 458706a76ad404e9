import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface StoreCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
}

/**
 * The store's one key pair, its bucket and region, kept in a JSON file (mode 0600) so that S3
 * tools can use them too. Generated on first use with `defaults` for the bucket and region; a
 * second process starting at the same moment reads the first one's file instead of writing its own.
 */
export async function loadOrCreateCredentials(
  file: string,
  defaults: { bucket: string; region: string },
): Promise<StoreCredentials> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as StoreCredentials;
    if (parsed.accessKeyId && parsed.secretAccessKey && parsed.region && parsed.bucket) return parsed;
    throw new Error(`${file} is missing a field; delete it to generate new credentials`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const creds: StoreCredentials = {
    accessKeyId: `S3G${randomBytes(10).toString('hex').toUpperCase().slice(0, 17)}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
    region: defaults.region,
    bucket: defaults.bucket,
  };
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await fs.writeFile(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process won the race to create it: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateCredentials(file, defaults);
    throw err;
  }
  return creds;
}
