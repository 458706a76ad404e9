#!/usr/bin/env node
// The command `s3-store`: runs the built server (npm run build makes dist/).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    's3-store is not built yet: run `npm run build` in its package (or the workspace root).\n',
  );
  process.exit(1);
}
await import(cli.href);
