#!/usr/bin/env node
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadOrCreateCredentials } from './credentials.js';
import { stderrAccessLogger } from './logger.js';
import { createS3Server } from './server.js';

const USAGE = `Usage: s3-store --dir <directory> [--port 9000] [--host 127.0.0.1] [--bucket store] [--region us-east-1]

Runs an S3-compatible server for one bucket, path-style, at http://<host>:<port>/<bucket>.
Objects live in <dir>/objects; the access key, secret, bucket and region in <dir>/credentials.json
(created on first start, mode 0600). --bucket and --region apply only when that file is created.`;

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string', default: '9000' },
    host: { type: 'string', default: '127.0.0.1' },
    bucket: { type: 'string', default: 'store' },
    region: { type: 'string', default: 'us-east-1' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help || !values.dir || !/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(values.help ? 0 : 2);
}
const dir = path.resolve(values.dir);
const creds = await loadOrCreateCredentials(path.join(dir, 'credentials.json'), {
  bucket: values.bucket,
  region: values.region,
});
const store = createS3Server({
  root: path.join(dir, 'objects'),
  bucket: creds.bucket,
  region: creds.region,
  credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
  // One access line per request on stderr (stdout says where the store is).
  log: stderrAccessLogger,
});
await store.ready;
// Node's own limits apply: 60 s for the headers, 5 minutes for a whole request.
const server = http.createServer((req, res) => store.handle(req, res));
server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : Number(values.port);
  const endpoint = `http://${values.host.includes(':') ? `[${values.host}]` : values.host}:${port}`;
  process.stdout.write(
    [
      `endpoint: ${endpoint}`,
      `bucket: ${creds.bucket}`,
      `region: ${creds.region}`,
      `accessKeyId: ${creds.accessKeyId}`,
      `secretAccessKey: ${creds.secretAccessKey}`,
      `credentials file: ${path.join(dir, 'credentials.json')}`,
      `try: AWS_ACCESS_KEY_ID=${creds.accessKeyId} AWS_SECRET_ACCESS_KEY=${creds.secretAccessKey} aws --endpoint-url ${endpoint} --region ${creds.region} s3 ls s3://${creds.bucket}`,
      '',
    ].join('\n'),
  );
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeIdleConnections();
    void store.close().then(() => process.exit(0));
  });
}
