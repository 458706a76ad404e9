import {
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessEntry } from '../src/access-log.js';
import type { KeyGrant } from '../src/auth/sigv4.js';
import { codeOf, startStore, type TestStore } from './support.js';

/**
 * Keys besides the store's own, as an app lends them to its people: each limited to a prefix, some
 * to reads; looked up on every request, so a key taken away stops at once.
 */
describe('keys limited to a prefix, or to reads', () => {
  let store: TestStore;
  const grants = new Map<string, KeyGrant>();
  const seen: AccessEntry[] = [];
  let alice: S3Client;
  let reader: S3Client;
  let wide: S3Client;

  const clientFor = (accessKeyId: string, secretAccessKey: string) =>
    new S3Client({
      endpoint: store.endpoint,
      region: store.region,
      credentials: { accessKeyId, secretAccessKey },
      forcePathStyle: true,
      maxAttempts: 1,
    });

  beforeAll(async () => {
    grants.set('ALICEKEY', {
      secretAccessKey: 'alice-secret',
      readPrefix: 'users/a/',
      writePrefix: 'users/a/',
    });
    grants.set('READKEY', { secretAccessKey: 'reader-secret', readPrefix: 'users/a/', writePrefix: null });
    grants.set('WIDEKEY', { secretAccessKey: 'wide-secret', readPrefix: '', writePrefix: '' });
    grants.set('INBOXKEY', {
      secretAccessKey: 'inbox-secret',
      readPrefix: 'users/a/',
      writePrefix: 'users/a/in/',
    });
    grants.set('CAPPEDKEY', {
      secretAccessKey: 'capped-secret',
      readPrefix: 'users/c/',
      writePrefix: 'users/c/in/',
      flatWrites: true,
      maxObjectBytes: 6 * 1024 * 1024,
      maxOpenUploads: 2,
    });
    store = await startStore({
      keys: async (id) => grants.get(id),
      onAccess: (entry) => seen.push(entry),
    });
    alice = clientFor('ALICEKEY', 'alice-secret');
    reader = clientFor('READKEY', 'reader-secret');
    wide = clientFor('WIDEKEY', 'wide-secret');
    await store.storage.put('users/b/secret.jpg', Buffer.from('bob'), 'image/jpeg');
    await store.storage.put('users/a/own.jpg', Buffer.from('alice'), 'image/jpeg');
  });
  afterAll(() => store?.close());

  const Bucket = () => store.bucket;

  it('a key reads, writes, copies, lists and deletes under its prefix', async () => {
    await alice.send(new PutObjectCommand({ Bucket: Bucket(), Key: 'users/a/new.jpg', Body: 'new' }));
    const got = await alice.send(new GetObjectCommand({ Bucket: Bucket(), Key: 'users/a/new.jpg' }));
    expect(await got.Body?.transformToString()).toBe('new');
    await alice.send(
      new CopyObjectCommand({
        Bucket: Bucket(),
        Key: 'users/a/copy.jpg',
        CopySource: `${Bucket()}/users/a/new.jpg`,
      }),
    );
    const v2 = await alice.send(new ListObjectsV2Command({ Bucket: Bucket(), Prefix: 'users/a/' }));
    expect(v2.Contents?.map((o) => o.Key)).toEqual([
      'users/a/copy.jpg',
      'users/a/new.jpg',
      'users/a/own.jpg',
    ]);
    const v1 = await alice.send(
      new ListObjectsCommand({ Bucket: Bucket(), Prefix: 'users/a/', Delimiter: '/' }),
    );
    expect(v1.Contents).toHaveLength(3);
    await alice.send(new DeleteObjectCommand({ Bucket: Bucket(), Key: 'users/a/copy.jpg' }));
    expect(await store.storage.head('users/a/copy.jpg')).toBeNull();
  });

  it('is refused (AccessDenied) anywhere else: nothing read, written, listed or deleted', async () => {
    const b = Bucket();
    expect(await codeOf(alice.send(new GetObjectCommand({ Bucket: b, Key: 'users/b/secret.jpg' })))).toBe(
      'AccessDenied',
    );
    expect(
      await codeOf(alice.send(new PutObjectCommand({ Bucket: b, Key: 'users/b/x.jpg', Body: 'x' }))),
    ).toBe('AccessDenied');
    expect(
      await codeOf(alice.send(new PutObjectCommand({ Bucket: b, Key: 'users/ab.jpg', Body: 'x' }))),
    ).toBe('AccessDenied');
    // Copying someone else's object into one's own prefix reads it: refused.
    expect(
      await codeOf(
        alice.send(
          new CopyObjectCommand({
            Bucket: b,
            Key: 'users/a/stolen.jpg',
            CopySource: `${b}/users/b/secret.jpg`,
          }),
        ),
      ),
    ).toBe('AccessDenied');
    expect(await codeOf(alice.send(new DeleteObjectCommand({ Bucket: b, Key: 'users/b/secret.jpg' })))).toBe(
      'AccessDenied',
    );
    expect(
      await codeOf(alice.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'users/b/big.bin' }))),
    ).toBe('AccessDenied');
    // A listing must ask for the key's prefix: the whole bucket, another prefix, or a shorter one is refused.
    for (const Prefix of [undefined, 'users/', 'users/b/', 'users/a'])
      expect(await codeOf(alice.send(new ListObjectsV2Command({ Bucket: b, Prefix }))), String(Prefix)).toBe(
        'AccessDenied',
      );
    expect(await codeOf(alice.send(new ListObjectsCommand({ Bucket: b })))).toBe('AccessDenied');
    // A multi-delete deletes what is the key's and names each other key as refused.
    await store.storage.put('users/a/gone.jpg', Buffer.from('x'), 'image/jpeg');
    const many = await alice.send(
      new DeleteObjectsCommand({
        Bucket: b,
        Delete: { Objects: [{ Key: 'users/a/gone.jpg' }, { Key: 'users/b/secret.jpg' }] },
      }),
    );
    expect(many.Deleted?.map((d) => d.Key)).toEqual(['users/a/gone.jpg']);
    expect(many.Errors?.map((e) => [e.Key, e.Code])).toEqual([['users/b/secret.jpg', 'AccessDenied']]);
    expect(await store.storage.head('users/b/secret.jpg')).not.toBeNull();
    expect(await store.storage.head('users/b/x.jpg')).toBeNull();
    expect(await store.storage.head('users/a/stolen.jpg')).toBeNull();
  });

  it('signs nothing outside its prefix: a presigned URL or a form policy of its own is refused there', async () => {
    const url = await getSignedUrl(
      alice,
      new GetObjectCommand({ Bucket: Bucket(), Key: 'users/b/secret.jpg' }),
      {
        expiresIn: 60,
      },
    );
    expect((await fetch(url)).status).toBe(403);
    const ownUrl = await getSignedUrl(
      alice,
      new GetObjectCommand({ Bucket: Bucket(), Key: 'users/a/own.jpg' }),
      {
        expiresIn: 60,
      },
    );
    expect(await (await fetch(ownUrl)).text()).toBe('alice');
    for (const [Key, status] of [
      ['users/b/planted.jpg', 403],
      ['users/a/posted.jpg', 204],
    ] as const) {
      const form = await createPresignedPost(alice, { Bucket: Bucket(), Key, Expires: 60 });
      const data = new FormData();
      for (const [k, v] of Object.entries(form.fields)) data.append(k, v);
      data.append('file', new Blob(['posted']), 'p.jpg');
      expect((await fetch(form.url, { method: 'POST', body: data })).status, Key).toBe(status);
    }
    expect(await store.storage.head('users/b/planted.jpg')).toBeNull();
  });

  it('a read-only key reads and lists its prefix, and writes nothing', async () => {
    const b = Bucket();
    const got = await reader.send(new GetObjectCommand({ Bucket: b, Key: 'users/a/own.jpg' }));
    expect(await got.Body?.transformToString()).toBe('alice');
    expect(
      (await reader.send(new ListObjectsV2Command({ Bucket: b, Prefix: 'users/a/' }))).KeyCount,
    ).toBeGreaterThan(0);
    expect(
      await codeOf(reader.send(new PutObjectCommand({ Bucket: b, Key: 'users/a/r.jpg', Body: 'x' }))),
    ).toBe('AccessDenied');
    expect(await codeOf(reader.send(new DeleteObjectCommand({ Bucket: b, Key: 'users/a/own.jpg' })))).toBe(
      'AccessDenied',
    );
    expect(
      await codeOf(
        reader.send(
          new DeleteObjectsCommand({ Bucket: b, Delete: { Objects: [{ Key: 'users/a/own.jpg' }] } }),
        ),
      ),
    ).toBe('AccessDenied');
    expect(
      await codeOf(
        reader.send(
          new CopyObjectCommand({ Bucket: b, Key: 'users/a/c.jpg', CopySource: `${b}/users/a/own.jpg` }),
        ),
      ),
    ).toBe('AccessDenied');
    expect(
      await codeOf(reader.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'users/a/big.bin' }))),
    ).toBe('AccessDenied');
    expect(await store.storage.head('users/a/own.jpg')).not.toBeNull();
    expect(await store.storage.head('users/a/r.jpg')).toBeNull();
  });

  it('a key that writes under a narrower prefix than it reads: reads, lists and copies from all of it, writes only there', async () => {
    const inbox = clientFor('INBOXKEY', 'inbox-secret');
    const b = Bucket();
    const got = await inbox.send(new GetObjectCommand({ Bucket: b, Key: 'users/a/own.jpg' }));
    expect(await got.Body?.transformToString()).toBe('alice');
    await inbox.send(new PutObjectCommand({ Bucket: b, Key: 'users/a/in/new.jpg', Body: 'in' }));
    await inbox.send(
      new CopyObjectCommand({ Bucket: b, Key: 'users/a/in/copy.jpg', CopySource: `${b}/users/a/own.jpg` }),
    );
    for (const call of [
      () => inbox.send(new PutObjectCommand({ Bucket: b, Key: 'users/a/thumbs/x.webp', Body: 'x' })),
      () => inbox.send(new DeleteObjectCommand({ Bucket: b, Key: 'users/a/own.jpg' })),
      () =>
        inbox.send(
          new CopyObjectCommand({ Bucket: b, Key: 'users/a/own.jpg', CopySource: `${b}/users/a/in/new.jpg` }),
        ),
    ])
      expect(await codeOf(call())).toBe('AccessDenied');
    const many = await inbox.send(
      new DeleteObjectsCommand({
        Bucket: b,
        Delete: { Objects: [{ Key: 'users/a/in/copy.jpg' }, { Key: 'users/a/own.jpg' }] },
      }),
    );
    expect(many.Deleted?.map((d) => d.Key)).toEqual(['users/a/in/copy.jpg']);
    expect(await store.storage.head('users/a/own.jpg')).not.toBeNull();
  });

  it('a bucket-wide key reaches everything; a key taken away, an unknown one or a wrong secret are refused', async () => {
    const b = Bucket();
    const got = await wide.send(new GetObjectCommand({ Bucket: b, Key: 'users/b/secret.jpg' }));
    expect(await got.Body?.transformToString()).toBe('bob');
    expect((await wide.send(new ListObjectsV2Command({ Bucket: b }))).KeyCount).toBeGreaterThan(2);

    grants.delete('WIDEKEY');
    expect(await codeOf(wide.send(new GetObjectCommand({ Bucket: b, Key: 'users/b/secret.jpg' })))).toBe(
      'InvalidAccessKeyId',
    );
    const wrong = clientFor('ALICEKEY', 'not-the-secret');
    expect(await codeOf(wrong.send(new GetObjectCommand({ Bucket: b, Key: 'users/a/own.jpg' })))).toBe(
      'SignatureDoesNotMatch',
    );
    const unknown = clientFor('NOSUCHKEY', 'x');
    expect(await codeOf(unknown.send(new ListObjectsV2Command({ Bucket: b, Prefix: 'users/a/' })))).toBe(
      'InvalidAccessKeyId',
    );
  });

  it('holds a key to flat writes, its size limit (one PUT, a copy, a multipart upload’s parts together) and its open uploads', async () => {
    const capped = clientFor('CAPPEDKEY', 'capped-secret');
    const b = Bucket();
    const MiB = 1024 * 1024;
    await capped.send(new PutObjectCommand({ Bucket: b, Key: 'users/c/in/ok.bin', Body: Buffer.alloc(MiB) }));
    expect(
      await codeOf(capped.send(new PutObjectCommand({ Bucket: b, Key: 'users/c/in/deep/x.bin', Body: 'x' }))),
    ).toBe('AccessDenied');
    expect(
      await codeOf(
        capped.send(
          new PutObjectCommand({ Bucket: b, Key: 'users/c/in/big.bin', Body: Buffer.alloc(7 * MiB) }),
        ),
      ),
    ).toBe('EntityTooLarge');
    await store.storage.put('users/c/seven.bin', Buffer.alloc(7 * MiB), 'application/octet-stream');
    expect(
      await codeOf(
        capped.send(
          new CopyObjectCommand({ Bucket: b, Key: 'users/c/in/c.bin', CopySource: `${b}/users/c/seven.bin` }),
        ),
      ),
    ).toBe('EntityTooLarge');
    // Parts: 5 MiB fits, a second one that would make 7 MiB does not; the same part again replaces it.
    const { UploadId } = await capped.send(
      new CreateMultipartUploadCommand({ Bucket: b, Key: 'users/c/in/mp.bin' }),
    );
    const part = (PartNumber: number, size: number) =>
      capped.send(
        new UploadPartCommand({
          Bucket: b,
          Key: 'users/c/in/mp.bin',
          UploadId,
          PartNumber,
          Body: Buffer.alloc(size),
        }),
      );
    await part(1, 5 * MiB);
    expect(await codeOf(part(2, 2 * MiB))).toBe('EntityTooLarge');
    await part(2, MiB);
    await part(1, 5 * MiB);
    await capped.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'users/c/in/mp2.bin' }));
    expect(
      await codeOf(capped.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'users/c/in/mp3.bin' }))),
    ).toBe('AccessDenied');
    expect(await store.storage.head('users/c/in/big.bin')).toBeNull();
    expect(await store.storage.head('users/c/in/c.bin')).toBeNull();
  });

  it('names in the access record the key the signature was checked with, whatever else the request says', async () => {
    seen.length = 0;
    // A request signed with the reader's key, with a second Credential= naming alice's put before it.
    const reader2 = clientFor('READKEY', 'reader-secret');
    reader2.middlewareStack.addRelativeTo(
      ((next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
        const request = (args as { request: { headers: Record<string, string> } }).request;
        request.headers.authorization = (request.headers.authorization ?? '').replace(
          'AWS4-HMAC-SHA256 ',
          'AWS4-HMAC-SHA256 Credential=ALICEKEY/20260101/us-east-1/s3/aws4_request, ',
        );
        return next(args);
      }) as Parameters<typeof reader2.middlewareStack.addRelativeTo>[0],
      { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'forgeCredential' },
    );
    await codeOf(reader2.send(new GetObjectCommand({ Bucket: Bucket(), Key: 'users/a/own.jpg' })));
    // A form post signed with a personal key is named too.
    const form = await createPresignedPost(alice, { Bucket: Bucket(), Key: 'users/a/form.jpg', Expires: 60 });
    const data = new FormData();
    for (const [k, v] of Object.entries(form.fields)) data.append(k, v);
    data.append('file', new Blob(['f']), 'f.jpg');
    expect((await fetch(form.url, { method: 'POST', body: data })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((e) => [e.accessKeyId, e.operation, e.authenticated])).toEqual([
      ['READKEY', 'REST.GET.OBJECT', true],
      ['ALICEKEY', 'REST.POST.OBJECT', true],
    ]);
  });

  it('tells of every request once answered, with its key, operation, key and status', async () => {
    seen.length = 0;
    await alice.send(new GetObjectCommand({ Bucket: Bucket(), Key: 'users/a/own.jpg' }));
    await codeOf(alice.send(new GetObjectCommand({ Bucket: Bucket(), Key: 'users/b/secret.jpg' })));
    // Signed with a wrong secret: the id is the key's, but nothing says the key made it.
    await codeOf(
      clientFor('ALICEKEY', 'guessed').send(
        new GetObjectCommand({ Bucket: Bucket(), Key: 'users/a/own.jpg' }),
      ),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(
      seen.map((e) => [e.accessKeyId, e.operation, e.key, e.status, e.errorCode, e.authenticated]),
    ).toEqual([
      ['ALICEKEY', 'REST.GET.OBJECT', 'users/a/own.jpg', 200, '-', true],
      ['ALICEKEY', 'REST.GET.OBJECT', 'users/b/secret.jpg', 403, 'AccessDenied', true],
      ['ALICEKEY', 'REST.GET.OBJECT', '-', 403, 'SignatureDoesNotMatch', false],
    ]);
  });
});
