import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS, awsCliEnv } from './aws-cli.js';
import { startStore, type TestStore } from './support.js';

const run = promisify(execFile);
/** Debian's: `aws` (awscli) and the system Python with python3-boto3, as .ci/run installs them. */
const PYTHON = '/usr/bin/python3';
const haveTools = existsSync(AWS) && existsSync(PYTHON);
// Skipped only on a machine without the tools, outside CI: CI installs them.
const skip = !haveTools && !process.env.CI;
const MiB = 1024 * 1024;

/**
 * The store as people's tools use it: the AWS CLI (`aws s3 cp` of a large file goes up in parts,
 * `sync`, `rm --recursive`, `s3api list-objects`, which is ListObjects v1) and boto3 (the
 * `list_objects` a well-known Flask gallery calls, `upload_file` in parts).
 */
describe.skipIf(skip)('the AWS CLI and boto3 against the store', () => {
  let store: TestStore;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    store = await startStore();
    dir = mkdtempSync(path.join(tmpdir(), 's3-tools-'));
    env = awsCliEnv(dir, store.credentials);
  });
  afterAll(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const aws = (...args: string[]) =>
    run(AWS, ['--endpoint-url', store.endpoint, '--no-cli-pager', ...args], { env, maxBuffer: 16 * MiB });
  const s3url = (key: string) => `s3://${store.bucket}/${key}`;

  it('copies a 20 MiB file up in parts and back, byte for byte', { timeout: 60_000 }, async () => {
    const file = path.join(dir, 'big.bin');
    const bytes = randomBytes(20 * MiB);
    writeFileSync(file, bytes);
    await aws('s3', 'cp', file, s3url('cli/big.bin'));
    const head = await store.storage.head('cli/big.bin');
    // 8 MiB parts (the CLI's default): three of them, and S3's multipart ETag says so.
    expect(head?.etag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(head?.size).toBe(bytes.length);
    const back = path.join(dir, 'back.bin');
    await aws('s3', 'cp', s3url('cli/big.bin'), back);
    const { stdout } = await run('sha256sum', [back]);
    expect(stdout.split(' ')[0]).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('syncs a folder, lists it with v1 and v2, and removes it recursively', { timeout: 60_000 }, async () => {
    const tree = path.join(dir, 'tree');
    mkdirSync(path.join(tree, 'sub'), { recursive: true });
    writeFileSync(path.join(tree, 'one.txt'), 'one');
    writeFileSync(path.join(tree, 'a b.txt'), 'spaced');
    writeFileSync(path.join(tree, 'sub', 'two.txt'), 'two');
    // Files made a minute ago: sync compares them with the bucket's times, which are whole seconds.
    const before = new Date(Date.now() - 60_000);
    for (const file of ['one.txt', 'a b.txt', 'sub/two.txt'])
      utimesSync(path.join(tree, file), before, before);
    await aws('s3', 'sync', tree, s3url('sync/'));
    const keys = ['sync/a b.txt', 'sync/one.txt', 'sync/sub/two.txt'];
    const v1 = JSON.parse(
      (await aws('s3api', 'list-objects', '--bucket', store.bucket, '--prefix', 'sync/')).stdout,
    );
    expect(v1.Contents.map((c: { Key: string }) => c.Key)).toEqual(keys);
    const listed = (await aws('s3', 'ls', '--recursive', s3url('sync/'))).stdout;
    for (const key of keys) expect(listed).toContain(key);
    // A second sync sends nothing: the sizes and times agree.
    expect((await aws('s3', 'sync', tree, s3url('sync/'))).stdout).toBe('');
    await aws('s3', 'rm', '--recursive', s3url('sync/'));
    expect((await store.storage.list('sync/')).keys).toEqual([]);
  });

  it('serves boto3: list_objects (v1) paginated, upload_file in parts, list_objects_v2', {
    timeout: 60_000,
  }, async () => {
    const script = `
import boto3, json, os, sys
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',
                  config=Config(s3={'addressing_style': 'path'}))
bucket = sys.argv[2]
for i in range(5):
    s3.put_object(Bucket=bucket, Key='py/photo %d+.jpg' % i, Body=b'x' * i)
pages = s3.get_paginator('list_objects').paginate(Bucket=bucket, Prefix='py/', PaginationConfig={'PageSize': 2})
v1 = [o['Key'] for p in pages for o in p.get('Contents', [])]
path = os.path.join(sys.argv[3], 'twelve.bin')
with open(path, 'wb') as f:
    f.write(os.urandom(12 * 1024 * 1024))
s3.upload_file(path, bucket, 'py/twelve.bin')
etag = s3.head_object(Bucket=bucket, Key='py/twelve.bin')['ETag']
v2 = [o['Key'] for o in s3.list_objects_v2(Bucket=bucket, Prefix='py/')['Contents']]
print(json.dumps({'v1': v1, 'etag': etag, 'v2': v2}))
`;
    const { stdout } = await run(PYTHON, ['-c', script, store.endpoint, store.bucket, dir], { env });
    const out = JSON.parse(stdout) as { v1: string[]; etag: string; v2: string[] };
    const photos = [0, 1, 2, 3, 4].map((i) => `py/photo ${i}+.jpg`);
    expect(out.v1).toEqual(photos);
    expect(out.etag).toMatch(/^"[0-9a-f]{32}-2"$/); // 8 MiB parts: two
    expect(out.v2).toEqual([...photos, 'py/twelve.bin']);
  });
});
