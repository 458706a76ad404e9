import fs from 'node:fs/promises';
import { Writable } from 'node:stream';

// The socket keeps reading while a write is on the disk: without room for a few of its 64 KB chunks,
// every chunk waits for the previous write to finish.
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Big enough that small images never flush early, small enough that a 20 MB upload flushes as it goes. */
export const FLUSH_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * Writes a body into an open file from `start` on, looking at each chunk first (`inspect` may throw
 * to refuse it), and leaves the file open for the header that follows. Chunks that queued while a
 * write was on the disk go down in one writev. With `flushEveryBytes`, the disk starts on what has
 * arrived while the rest is still on the wire, so the fsync at the end has little left to do; the
 * stream finishes only once that flush has.
 */
export function fileWriter(
  opening: Promise<fs.FileHandle>,
  start: number,
  inspect: (chunk: Buffer) => void,
  flushEveryBytes: number | null,
): Writable {
  let position = start;
  let unflushed = 0;
  let flushing: Promise<void> | null = null;
  let flushError: Error | null = null;
  let handle: fs.FileHandle;
  return new Writable({
    highWaterMark: WRITE_BUFFER_BYTES,
    // Writes wait for the open; a failed open fails the pipeline.
    construct(done) {
      opening.then((h) => {
        handle = h;
        done();
      }, done);
    },
    writev(chunks, done) {
      if (flushError) return done(flushError);
      let buffers: Buffer[];
      try {
        buffers = chunks.map(({ chunk }) => {
          inspect(chunk as Buffer);
          return chunk as Buffer;
        });
      } catch (err) {
        done(err as Error);
        return;
      }
      writeAll(handle, buffers, position).then((written) => {
        position += written;
        unflushed += written;
        if (flushEveryBytes !== null && unflushed >= flushEveryBytes && !flushing) {
          unflushed = 0;
          flushing = handle.datasync().then(
            () => {
              flushing = null;
            },
            (err: Error) => {
              flushError = err;
              flushing = null;
            },
          );
        }
        done();
      }, done);
    },
    final(done) {
      void (flushing ?? Promise.resolve()).then(() => done(flushError));
    },
  });
}

/** writev may write less than asked (a signal, a full disk); what is left is written again. */
async function writeAll(handle: fs.FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  const rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, position + total);
    if (bytesWritten === 0) throw new Error('the disk took none of the bytes written to it');
    total += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) skip -= (rest.shift() as Buffer).length;
    if (skip > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  }
  return total;
}

/** Makes a rename in `dir` survive a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
