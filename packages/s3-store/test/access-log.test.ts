import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startStore, type TestStore } from './support.js';

describe('the access log', () => {
  let store: TestStore;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    store = await startStore({
      log: {
        error: () => undefined,
        info: (fields, message) => {
          if (message === 's3 access') lines.push(fields);
        },
      },
    });
  });
  afterAll(() => store.close());

  /** The line of the request that did `operation` on `key`, once it is written. */
  const lineOf = (operation: string, key: string) =>
    vi.waitFor(() => {
      const line = lines.find((l) => l.operation === operation && l.key === key);
      if (!line) throw new Error(`no line for ${operation} ${key}`);
      return line;
    });

  it('writes one line per request with S3’s access-log fields: key id, operation, key, status, error, bytes, time', async () => {
    const Bucket = store.bucket;
    await store.client.send(new PutObjectCommand({ Bucket, Key: 'log/a b.txt', Body: 'hello' }));
    const got = await store.client.send(new GetObjectCommand({ Bucket, Key: 'log/a b.txt' }));
    await got.Body?.transformToString();
    const missing = await store.client
      .send(new GetObjectCommand({ Bucket, Key: 'log/none' }))
      .catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(S3ServiceException);
    const { UploadId } = await store.client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'log/mp' }));
    await store.client.send(
      new UploadPartCommand({ Bucket, Key: 'log/mp', UploadId, PartNumber: 1, Body: 'p' }),
    );

    const put = await lineOf('REST.PUT.OBJECT', 'log/a b.txt');
    expect(put).toMatchObject({
      accessKeyId: store.credentials.accessKeyId,
      status: 200,
      errorCode: '-',
      requestUri: 'PUT /s3/gallery/log/a%20b.txt',
      completed: true,
    });
    expect(put.totalTimeMs).toBeGreaterThanOrEqual(0);
    expect(await lineOf('REST.GET.OBJECT', 'log/a b.txt')).toMatchObject({ status: 200, bytesSent: 5 });
    expect(await lineOf('REST.GET.OBJECT', 'log/none')).toMatchObject({
      status: 404,
      errorCode: 'NoSuchKey',
    });
    expect(await lineOf('REST.POST.UPLOADS', 'log/mp')).toMatchObject({ status: 200 });
    expect(await lineOf('REST.PUT.PART', 'log/mp')).toMatchObject({ status: 200 });
    // Nothing secret: no signature or query string in any line.
    expect(JSON.stringify(lines)).not.toMatch(/Signature|X-Amz-Credential/);
    // One line each.
    expect(lines.filter((l) => l.operation === 'REST.PUT.OBJECT' && l.key === 'log/a b.txt')).toHaveLength(1);
  });
});
