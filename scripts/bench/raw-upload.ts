/**
 * The upload baseline: a bare Node server that streams each request body to a file on the same
 * disk. With RAW_DURABLE=1 it also does the two things any S3 store must before it answers: the MD5
 * of the body (the ETag) and an fsync of the file.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.RAW_DIR ?? '.';
const durable = process.env.RAW_DURABLE === '1';
let n = 0;
http
  .createServer(async (req, res) => {
    try {
      const file = path.join(dir, `upload-${n++}`);
      if (durable) {
        const md5 = createHash('md5');
        req.on('data', (chunk: Buffer) => md5.update(chunk));
        await pipeline(req, createWriteStream(file));
        // fsync flushes the file itself, whichever descriptor asks.
        const handle = await fs.open(file, 'r+');
        await handle.sync();
        await handle.close();
        res.writeHead(204, { ETag: `"${md5.digest('hex')}"` }).end();
        return;
      }
      await pipeline(req, createWriteStream(file));
      res.writeHead(204).end();
    } catch {
      res.writeHead(500).end();
    }
  })
  .listen(Number(process.env.RAW_PORT), '127.0.0.1', () => console.log('listening'));
