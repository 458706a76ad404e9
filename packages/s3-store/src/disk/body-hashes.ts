import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * MD5 (every object's ETag) and SHA-256 (signed payloads) of an upload, computed on a worker thread
 * once the body is large: hashing costs the main thread more than parsing and writing the upload
 * together, and while it hashes, no other request moves. Bodies that fit in one batch are hashed in
 * place, since a round trip to the worker would cost more than the hash.
 */
const BATCH_BYTES = 512 * 1024;

interface BodyDigests {
  md5: Buffer;
  /** hex; only when asked for */
  sha256?: string;
}

export interface BodyHashes {
  update(chunk: Buffer): void;
  digest(): Promise<BodyDigests>;
  /** Frees the worker's state for a body that will not be finished. */
  discard(): void;
}

export function hashBody(o: { sha256: boolean }): BodyHashes {
  let batch: ArrayBuffer | null = null;
  let view: Buffer | null = null;
  let used = 0;
  // Set when the first batch goes to the worker; this body stays with that worker even if it dies.
  let worker: HashWorker | null = null;
  let id = 0;
  const send = () => {
    if (!batch || used === 0) return;
    if (!worker) {
      worker = hashWorker();
      id = worker.start(o.sha256);
    }
    // The batch's memory moves to the worker instead of being copied a second time.
    worker.post({ id, data: new Uint8Array(batch, 0, used) }, [batch]);
    batch = null;
    view = null;
    used = 0;
  };
  return {
    update(chunk) {
      let offset = 0;
      while (offset < chunk.length) {
        if (!batch || !view) {
          batch = new ArrayBuffer(BATCH_BYTES);
          view = Buffer.from(batch);
        }
        const n = chunk.copy(view, used, offset);
        used += n;
        offset += n;
        if (used === BATCH_BYTES) send();
      }
    },
    async digest() {
      if (!worker) {
        const bytes = view ? view.subarray(0, used) : Buffer.alloc(0);
        return {
          md5: createHash('md5').update(bytes).digest(),
          ...(o.sha256 ? { sha256: createHash('sha256').update(bytes).digest('hex') } : {}),
        };
      }
      send();
      return worker.finish(id);
    },
    discard() {
      batch = null;
      view = null;
      worker?.post({ id, drop: true });
    },
  };
}

interface HashWorker {
  start(sha256: boolean): number;
  post(message: object, transfer?: ArrayBuffer[]): void;
  finish(id: number): Promise<BodyDigests>;
}

let current: HashWorker | null = null;

function hashWorker(): HashWorker {
  current ??= startHashWorker();
  return current;
}

function startHashWorker(): HashWorker {
  const worker = new Worker(new URL('./hash-worker.js', import.meta.url));
  let nextId = 1;
  const waiting = new Map<number, { resolve: (d: BodyDigests) => void; reject: (e: Error) => void }>();
  let failure: Error | null = null;
  const fail = (err: Error) => {
    failure ??= err;
    if (current === self) current = null;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  worker.on('message', (m: { id: number; md5: Uint8Array; sha256?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    w?.resolve({ md5: Buffer.from(m.md5), ...(m.sha256 ? { sha256: m.sha256 } : {}) });
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the hashing worker stopped (exit code ${code})`)));
  // Only a digest awaited holds the process open (see finish), never the idle worker. After the
  // listeners: the first 'message' listener refs the worker's port again, which undid an unref made
  // before it (a program that had stored one large body never ended by itself).
  worker.unref();
  const self: HashWorker = {
    start(sha256) {
      const id = nextId++;
      worker.postMessage({ id, start: true, sha256 });
      return id;
    },
    post(message, transfer) {
      if (!failure) worker.postMessage(message, transfer);
    },
    finish(id) {
      return new Promise((resolve, reject) => {
        if (failure) return reject(failure);
        waiting.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage({ id, end: true });
      });
    },
  };
  return self;
}
