import { Transform, type TransformCallback } from 'node:stream';
import { badRequest } from './errors.js';

const MAX_CHUNK_BYTES = 16 * 1024 * 1024;
const MAX_LINE_BYTES = 4096;

const malformed = (what = 'body') => badRequest('InvalidRequest', `Malformed aws-chunked ${what}.`);
const incomplete = () => badRequest('IncompleteBody', 'The request body terminated unexpectedly');

/**
 * Decodes an aws-chunked body ("<hex size>[;ext]\r\n<data>\r\n ... 0\r\n<trailers>\r\n\r\n"), the
 * framing the AWS SDK uses for streamed uploads, and collects the trailer headers. With
 * `decodedLength` (x-amz-decoded-content-length) the data must add up to exactly that; the trailers
 * named in `allowedTrailers` (x-amz-trailer) must come, and no others.
 */
export class AwsChunkedDecoder extends Transform {
  readonly trailers = new Map<string, string>();
  private buffer: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private state: 'size' | 'data' | 'data-end' | 'trailers' | 'done' = 'size';
  decodedBytes = 0;

  constructor(private readonly o: { decodedLength?: number; allowedTrailers?: ReadonlySet<string> } = {}) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    try {
      this.drain();
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state !== 'done') done(incomplete());
    else if ([...(this.o.allowedTrailers ?? [])].some((name) => !this.trailers.has(name)))
      done(malformed('trailer'));
    else if (this.o.decodedLength !== undefined && this.decodedBytes !== this.o.decodedLength)
      done(incomplete());
    else done();
  }

  private line(): string | null {
    const end = this.buffer.indexOf('\r\n');
    if (end < 0) {
      if (this.buffer.length > MAX_LINE_BYTES) throw malformed();
      return null;
    }
    const text = this.buffer.subarray(0, end).toString('latin1');
    this.buffer = this.buffer.subarray(end + 2);
    return text;
  }

  private drain(): void {
    for (;;) {
      if (this.state === 'size') {
        const line = this.line();
        if (line === null) return;
        const hex = line.split(';')[0] ?? '';
        if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) throw malformed();
        this.remaining = Number.parseInt(hex, 16);
        if (this.remaining > MAX_CHUNK_BYTES)
          throw badRequest('InvalidRequest', 'aws-chunked chunk too large.');
        if (this.o.decodedLength !== undefined && this.decodedBytes + this.remaining > this.o.decodedLength)
          throw badRequest('InvalidRequest', 'aws-chunked body longer than x-amz-decoded-content-length.');
        this.state = this.remaining === 0 ? 'trailers' : 'data';
      } else if (this.state === 'data') {
        if (this.buffer.length === 0) return;
        const take = Math.min(this.remaining, this.buffer.length);
        this.push(this.buffer.subarray(0, take));
        this.decodedBytes += take;
        this.buffer = this.buffer.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-end';
      } else if (this.state === 'data-end') {
        if (this.buffer.length < 2) return;
        if (this.buffer[0] !== 0x0d || this.buffer[1] !== 0x0a) throw malformed();
        this.buffer = this.buffer.subarray(2);
        this.state = 'size';
      } else if (this.state === 'trailers') {
        const line = this.line();
        if (line === null) return;
        if (line === '') {
          this.state = 'done';
          continue;
        }
        const colon = line.indexOf(':');
        if (colon < 0) throw malformed('trailer');
        const name = line.slice(0, colon).trim().toLowerCase();
        if (!this.o.allowedTrailers?.has(name) || this.trailers.has(name)) throw malformed('trailer');
        this.trailers.set(name, line.slice(colon + 1).trim());
      } else {
        // Nothing may follow the final empty line.
        if (this.buffer.length > 0) throw malformed();
        return;
      }
    }
  }
}
