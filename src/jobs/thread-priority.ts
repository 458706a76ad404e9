import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** How far image threads step back from the process's own nice value (19 is the last). */
export const IMAGE_THREAD_NICE = 10;
const TASKS = '/proc/self/task';

/**
 * Image work yields the CPU to requests. libvips (sharp) decodes and encodes on threads of its own,
 * named "libvips worker"; on Linux each thread has its own nice value, so each of them found here
 * is set IMAGE_THREAD_NICE below the process (at most 19, and never raised back). While every core
 * is busy with photos, the main thread (every request, and the embedded store) gets its turn first
 * instead of one equal share among libvips' threads; a nice value only orders turns, so images
 * still get every core that nothing else wants.
 *
 * The returned function looks for new image threads. libvips starts them when first needed and
 * ends idle ones after a while, so call it often while images are processed; it reads /proc only
 * for threads it has not seen. Elsewhere than Linux, it does nothing. (HEIC's decoding thread,
 * a worker thread of ours, steps back by itself: src/services/heif.ts.)
 */
function imageThreadPriority(nice: number = IMAGE_THREAD_NICE): () => void {
  const target = Math.min(19, os.getPriority() + nice);
  /** thread id → whether it is an image thread (kept only while the thread exists) */
  const seen = new Map<number, boolean>();
  return function lowerNewImageThreads(): void {
    if (process.platform !== 'linux') return;
    let current: number[];
    try {
      current = readdirSync(TASKS).map(Number);
    } catch {
      return;
    }
    const alive = new Set(current);
    for (const tid of seen.keys()) if (!alive.has(tid)) seen.delete(tid); // ids are reused
    for (const tid of current) {
      if (seen.has(tid)) continue;
      try {
        const isImage = readFileSync(`${TASKS}/${tid}/comm`, 'utf8').startsWith('libvips');
        if (isImage && os.getPriority(tid) < target) os.setPriority(tid, target);
        seen.set(tid, isImage);
      } catch {
        // the thread ended meanwhile
      }
    }
  };
}

/** How often image work looks for new libvips threads to lower (a few /proc reads when there are none). */
const LOWER_THREADS_EVERY_MS = 100;
let lowerNewImageThreads: (() => void) | undefined;

/**
 * Runs image work (a job's renditions, a share link's copy) with libvips' threads behind requests:
 * those found at its start, every LOWER_THREADS_EVERY_MS while it runs, and at its end.
 */
export async function behindRequests<T>(work: () => Promise<T>): Promise<T> {
  lowerNewImageThreads ??= imageThreadPriority();
  const lower = lowerNewImageThreads;
  lower();
  const lowering = setInterval(lower, LOWER_THREADS_EVERY_MS).unref();
  try {
    return await work();
  } finally {
    clearInterval(lowering);
    lower(); // those started since the last look
  }
}
