/** The upload baseline: a bare Node server that streams each request body to a file on the same disk. */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.RAW_DIR ?? '.';
let n = 0;
http
  .createServer(async (req, res) => {
    try {
      await pipeline(req, createWriteStream(path.join(dir, `upload-${n++}`)));
      res.writeHead(204).end();
    } catch {
      res.writeHead(500).end();
    }
  })
  .listen(Number(process.env.RAW_PORT), '127.0.0.1', () => console.log('listening'));
