import { Transform, type TransformCallback } from 'node:stream';
import { badRequest } from './s3-errors.js';

const MAX_CHUNK_BYTES = 16 * 1024 * 1024;
const MAX_LINE_BYTES = 4096;

/**
 * Decodes an aws-chunked body ("<hex size>[;ext]\r\n<data>\r\n ... 0\r\n<trailers>\r\n\r\n"), the
 * framing the AWS SDK uses for streamed uploads, and collects the trailer headers.
 */
export class AwsChunkedDecoder extends Transform {
  readonly trailers = new Map<string, string>();
  private buffer: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private state: 'size' | 'data' | 'data-end' | 'trailers' | 'done' = 'size';
  decodedBytes = 0;

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
    if (this.state !== 'done') done(badRequest('IncompleteBody', 'The request body terminated unexpectedly'));
    else done();
  }

  private line(): string | null {
    const end = this.buffer.indexOf('\r\n');
    if (end < 0) {
      if (this.buffer.length > MAX_LINE_BYTES)
        throw badRequest('InvalidRequest', 'Malformed aws-chunked body.');
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
        if (!/^[0-9a-fA-F]{1,8}$/.test(hex))
          throw badRequest('InvalidRequest', 'Malformed aws-chunked body.');
        this.remaining = Number.parseInt(hex, 16);
        if (this.remaining > MAX_CHUNK_BYTES)
          throw badRequest('InvalidRequest', 'aws-chunked chunk too large.');
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
        if (this.buffer[0] !== 0x0d || this.buffer[1] !== 0x0a)
          throw badRequest('InvalidRequest', 'Malformed aws-chunked body.');
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
        if (colon < 0) throw badRequest('InvalidRequest', 'Malformed aws-chunked trailer.');
        this.trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      } else {
        this.buffer = Buffer.alloc(0);
        return;
      }
    }
  }
}
