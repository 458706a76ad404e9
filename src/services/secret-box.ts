import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const VERSION = 'v1';

/**
 * Secrets the app must read back (S3 keys' secrets: SigV4 signs with them) are sealed with
 * AES-256-GCM under a key kept in a file in DATA_DIR (mode 0600), never in the database: a copy of
 * the database alone, or a backup of it, reveals none of them. Each box is bound to what it belongs
 * to (`context`), so a box moved to another row does not open.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): Promise<string>;
  /** throws when the box was not sealed with this key for this context */
  open(box: string, context: string): Promise<string>;
}

export function createSecretBox(keyFile: string): SecretBox {
  let key: Promise<Buffer> | undefined;
  const sealingKey = () => {
    key ??= loadOrCreateKey(keyFile).catch((err: unknown) => {
      key = undefined;
      throw err;
    });
    return key;
  };
  return {
    async seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', await sealingKey(), iv);
      cipher.setAAD(Buffer.from(context));
      const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, iv, cipher.getAuthTag(), data]
        .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
        .join('.');
    },
    async open(box, context) {
      const [version, iv, tag, data] = box.split('.');
      if (version !== VERSION || !iv || !tag || data === undefined) throw new Error('not a sealed secret');
      const decipher = createDecipheriv('aes-256-gcm', await sealingKey(), Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    },
  };
}

/** The key file, made on first use; a second process starting at the same moment reads the first one's. */
async function loadOrCreateKey(file: string): Promise<Buffer> {
  try {
    const key = await fs.readFile(file);
    if (key.length !== KEY_BYTES) throw new Error(`${file} is not a ${KEY_BYTES}-byte key`);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await fs.writeFile(file, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return loadOrCreateKey(file);
}
