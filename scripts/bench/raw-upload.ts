/**
 * The upload baseline: a bare Node server that streams each request body to a file on the same
 * disk. With RAW_FSYNC=1 it also flushes the file before answering, as the embedded store does.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.RAW_DIR ?? '.';
const durable = process.env.RAW_FSYNC === '1';
let n = 0;
http
  .createServer(async (req, res) => {
    try {
      const file = path.join(dir, `upload-${n++}`);
      await pipeline(req, createWriteStream(file));
      if (durable) {
        // fsync flushes the file itself, whichever descriptor asks.
        const handle = await fs.open(file, 'r+');
        await handle.sync();
        await handle.close();
      }
      res.writeHead(204).end();
    } catch {
      res.writeHead(500).end();
    }
  })
  .listen(Number(process.env.RAW_PORT), '127.0.0.1', () => console.log('listening'));
