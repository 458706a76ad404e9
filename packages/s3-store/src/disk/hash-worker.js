// @ts-check
// The hashing thread of body-hashes.ts: MD5 (and SHA-256 when asked) of bodies sent in batches.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

/** @type {Map<number, { md5: import('node:crypto').Hash, sha256: import('node:crypto').Hash | null }>} */
const bodies = new Map();
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

port.on('message', (m) => {
  if (m.start) {
    bodies.set(m.id, { md5: createHash('md5'), sha256: m.sha256 ? createHash('sha256') : null });
    return;
  }
  const body = bodies.get(m.id);
  if (!body) return;
  if (m.drop) {
    bodies.delete(m.id);
    return;
  }
  if (m.data) {
    body.md5.update(m.data);
    body.sha256?.update(m.data);
  }
  if (m.end) {
    bodies.delete(m.id);
    port.postMessage({ id: m.id, md5: body.md5.digest(), sha256: body.sha256?.digest('hex') });
  }
});
