/**
 * The upload baseline: a bare Node server that streams each request body to a file on the same
 * disk. RAW_WORK adds what any S3 store must do before it answers: `md5` hashes the body (the
 * ETag), `md5+fsync` also flushes the file to the disk.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.RAW_DIR ?? '.';
const work = process.env.RAW_WORK ?? 'copy';
let n = 0;
http
  .createServer(async (req, res) => {
    try {
      const file = path.join(dir, `upload-${n++}`);
      const md5 = work === 'copy' ? null : createHash('md5');
      if (md5) req.on('data', (chunk: Buffer) => md5.update(chunk));
      await pipeline(req, createWriteStream(file));
      if (work === 'md5+fsync') {
        // fsync flushes the file itself, whichever descriptor asks.
        const handle = await fs.open(file, 'r+');
        await handle.sync();
        await handle.close();
      }
      res.writeHead(204, md5 ? { ETag: `"${md5.digest('hex')}"` } : {}).end();
    } catch {
      res.writeHead(500).end();
    }
  })
  .listen(Number(process.env.RAW_PORT), '127.0.0.1', () => console.log('listening'));
