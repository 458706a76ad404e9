import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { IMAGE_THREAD_NICE } from '../jobs/thread-priority.js';

export interface DecodedHeif {
  width: number;
  height: number;
  /** 8-bit RGBA, upright (libheif applies the file's rotation and mirroring) */
  rgba: Buffer;
}

/** A decode that takes longer than this is cut off (its worker ends) and refused. */
const DECODE_TIMEOUT_MS = 120_000;

/**
 * The worker's code: plain JavaScript, run from this string (`eval`), so it needs no build step and
 * loads the same in development, tests and the production build. libheif-js (libheif built for
 * WebAssembly) decodes synchronously, seconds for a 48-megapixel photo: in a worker thread the
 * server's event loop never waits for it. Each decode's context is freed (libheif-js frees a
 * decoder's context only when that decoder decodes again, so a new decoder per file leaked its
 * file's size in WebAssembly memory, which never shrinks, until libheif aborted).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
// Behind requests, as libvips' threads are: on Linux a thread has a nice value of its own, and 0
// names this one.
if (workerData.nice > 0) {
  const os = require('node:os');
  try {
    os.setPriority(0, Math.min(19, os.getPriority(0) + workerData.nice));
  } catch {}
}
const lib = require(workerData.libheifPath);
parentPort.on('message', ({ bytes, maxPixels }) => {
  const decoder = new lib.HeifDecoder();
  let images = [];
  const fail = (err) => {
    for (const image of images) image.free();
    if (decoder.decoder) lib.heif_context_free(decoder.decoder);
    parentPort.postMessage({ error: String((err && err.message) || err) });
  };
  try {
    images = decoder.decode(new Uint8Array(bytes));
    const image = images.find((i) => i.is_primary()) || images[0];
    if (!image) throw new Error('no image in the HEIF file');
    const width = image.get_width();
    const height = image.get_height();
    if (!(width > 0 && height > 0) || width * height > maxPixels)
      throw new Error('a ' + width + ' x ' + height + ' HEIF image is beyond the pixel limit');
    const target = { data: new Uint8ClampedArray(width * height * 4), width, height };
    image.display(target, (result) => {
      for (const i of images) i.free();
      lib.heif_context_free(decoder.decoder);
      if (!result) return parentPort.postMessage({ error: 'libheif could not decode the image' });
      // display() fills the target's own array: a plain ArrayBuffer, handed over without a copy.
      parentPort.postMessage({ width, height, rgba: target.data.buffer }, [target.data.buffer]);
    });
  } catch (err) {
    fail(err);
  }
});
`;

type Answer = { error: string } | { width: number; height: number; rgba: ArrayBuffer };

let worker: Worker | undefined;
/** Decodes run one at a time: the worker's WebAssembly is single-threaded. */
let turn: Promise<unknown> = Promise.resolve();

function startWorker(): Worker {
  const libheifPath = createRequire(import.meta.url).resolve('libheif-js/wasm-bundle.js');
  // Elsewhere than Linux, a nice value set from a thread is the whole process's.
  const nice = process.platform === 'linux' ? IMAGE_THREAD_NICE : 0;
  const started = new Worker(WORKER_SOURCE, { eval: true, workerData: { libheifPath, nice } });
  // Idle, it does not keep the process alive.
  started.unref();
  return started;
}

function decodeInWorker(bytes: Uint8Array, maxPixels: number): Promise<DecodedHeif> {
  worker ??= startWorker();
  const current = worker;
  return new Promise<DecodedHeif>((resolve, reject) => {
    const end = (err: Error | null, decoded?: DecodedHeif) => {
      clearTimeout(timer);
      current.off('message', onMessage);
      current.off('error', onError);
      current.off('exit', onExit);
      current.unref();
      if (err) {
        // After any failure the worker goes: a libheif that aborted stays broken in it.
        if (worker === current) worker = undefined;
        void current.terminate();
        reject(err);
      } else resolve(decoded as DecodedHeif);
    };
    const onMessage = (answer: Answer) => {
      if ('error' in answer) end(new Error(answer.error));
      else end(null, { width: answer.width, height: answer.height, rgba: Buffer.from(answer.rgba) });
    };
    const onError = (err: Error) => end(err);
    const onExit = () => end(new Error('libheif stopped while decoding'));
    const timer = setTimeout(() => end(new Error('HEIF decoding took too long')), DECODE_TIMEOUT_MS);
    current.on('message', onMessage);
    current.on('error', onError);
    current.on('exit', onExit);
    current.ref();
    const copy = new Uint8Array(bytes); // its own buffer, handed over to the worker
    current.postMessage({ bytes: copy.buffer, maxPixels }, [copy.buffer]);
  });
}

/**
 * Decodes the primary image of a HEIC/HEIF file (an iPhone photo), in a worker thread. Refuses more
 * than `maxPixels` before decoding, as sharp does for other formats; throws on anything libheif
 * cannot read.
 */
export function decodeHeif(bytes: Uint8Array, maxPixels: number): Promise<DecodedHeif> {
  const decoded = turn.then(() => decodeInWorker(bytes, maxPixels));
  turn = decoded.catch(() => undefined);
  return decoded;
}
