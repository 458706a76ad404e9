import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const publicDir = fileURLToPath(new URL('../../public/', import.meta.url));

/** A hash of public/ taken at start-up: asset URLs change when files do, so they can be cached for a year. */
export const assetVersion = (() => {
  const hash = createHash('sha256');
  for (const entry of readdirSync(publicDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    hash.update(entry.name);
    hash.update(readFileSync(`${entry.parentPath}/${entry.name}`));
  }
  return hash.digest('hex').slice(0, 10);
})();

export const asset = (path: string) => `/public/${path}?v=${assetVersion}`;
