import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** How far image threads step back: from 0 (the process's own) to 19 (last). */
export const IMAGE_THREAD_NICE = 10;
const TASKS = '/proc/self/task';

/**
 * Image work yields the CPU to requests. libvips (sharp) decodes and encodes on threads of its own,
 * named "libvips worker"; on Linux each thread has its own nice value, so each of them found here
 * is set to IMAGE_THREAD_NICE. While every core is busy with photos, the main thread (every request,
 * and the embedded store) gets its turn first instead of one equal share among libvips' threads; a
 * nice value only orders turns, so images still get every core that nothing else wants.
 *
 * The returned function looks for new image threads; call it after image work (libvips starts its
 * threads when first needed). It reads /proc only for threads it has not seen. Elsewhere than
 * Linux, it does nothing.
 */
export function imageThreadPriority(nice: number = IMAGE_THREAD_NICE): () => void {
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
        if (isImage) os.setPriority(tid, nice);
        seen.set(tid, isImage);
      } catch {
        // the thread ended meanwhile
      }
    }
  };
}
