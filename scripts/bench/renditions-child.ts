/**
 * The renditions row in a process of its own, which run.ts starts as `npm start` starts the server
 * (its V8 flags and environment): our side of the row is the server's code, so it runs as the
 * server does. `renditions-child.ts <photo dir> <result file> <images> <rounds>`; the row goes to
 * the result file as JSON.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renditionsRow } from './processing.js';

const [dir, out, images, rounds] = process.argv.slice(2);
if (!dir || !out) throw new Error('usage: renditions-child.ts <photo dir> <result file> <images> <rounds>');
const photos = readdirSync(dir)
  .sort()
  .map((name) => readFileSync(path.join(dir, name)));
const result = await renditionsRow(photos, { images: Number(images), rounds: Number(rounds) });
writeFileSync(out, JSON.stringify(result));
