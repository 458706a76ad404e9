import { execFileSync } from 'node:child_process';
import { randomUUID, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventChanges, isSnsUrl, snsHostOf } from '../src/services/bucket-events.js';
import { DomainError } from '../src/services/errors.js';
import { makeTestApp, signUp, type TestApp } from './support/app.js';
import { makeJpeg } from './support/images.js';

const TOPIC = 'arn:aws:sns:us-east-1:111122223333:gallery-events';
const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem';
const MINIO_TOKEN = 'a-minio-webhook-token';
const SIGNED = {
  Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'],
  SubscriptionConfirmation: [
    'Message',
    'MessageId',
    'SubscribeURL',
    'Timestamp',
    'Token',
    'TopicArn',
    'Type',
  ],
} as const;

/** An S3 event document as AWS sends it (version 2.1), keys encoded form-style. */
function s3Event(bucket: string, records: { name: string; key: string }[]) {
  return {
    Records: records.map((r) => ({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: '2026-12-02T09:00:00.000Z',
      eventName: r.name,
      userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'gallery',
        bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
        object: {
          key: encodeURIComponent(r.key).replace(/%20/g, '+').replace(/%2F/g, '/'),
          size: 1024,
          eTag: 'd41d8cd98f00b204e9800998ecf8427e',
          sequencer: '0055AED6DCD90281E5',
        },
      },
    })),
  };
}

/**
 * External buckets' event notifications: AWS S3's through SNS (signed messages, a test certificate
 * made here with openssl, served by the fetcher the app is given for SNS URLs) and MinIO's webhook.
 */
describe('bucket events from SNS and MinIO', () => {
  let t: TestApp;
  let dir: string;
  let key: string;
  let certificate: string;
  const fetched: string[] = [];
  let ownerId: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 's3g-sns-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        path.join(dir, 'sns.key'),
        '-out',
        path.join(dir, 'sns.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=sns-test',
      ],
      { stdio: 'ignore' },
    );
    key = readFileSync(path.join(dir, 'sns.key'), 'utf8');
    certificate = readFileSync(path.join(dir, 'sns.pem'), 'utf8');
    t = await makeTestApp({
      env: {
        S3_EVENTS_SNS_TOPIC_ARN: `arn:aws:sns:eu-west-1:1:other, ${TOPIC}`,
        S3_EVENTS_TOKEN: MINIO_TOKEN,
      },
      bucketEventsFetch: async (url) => {
        fetched.push(url);
        if (url === CERT_URL) return certificate;
        // A confirmation that fails the first time, as a network error would.
        if (url.includes('Token=flaky') && !fetched.slice(0, -1).some((u) => u.includes('Token=flaky')))
          throw new Error('connection reset');
        if (url.startsWith('https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription'))
          return '<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>';
        throw new Error(`no such URL here: ${url}`);
      },
    });
    await signUp(t.client(), 'admin@example.com');
    ownerId = (await t.user('admin@example.com')).id;
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A message SNS would send, signed with the test certificate's key. */
  function snsMessage(type: keyof typeof SIGNED, fields: Record<string, string>, version: '1' | '2' = '1') {
    const message: Record<string, string> = {
      Type: type,
      MessageId: randomUUID(),
      TopicArn: TOPIC,
      Timestamp: new Date().toISOString(),
      SignatureVersion: version,
      SigningCertURL: CERT_URL,
      ...fields,
    };
    const toSign = SIGNED[type]
      .filter((name) => message[name] !== undefined)
      .map((name) => `${name}\n${message[name]}\n`)
      .join('');
    message.Signature = sign(version === '1' ? 'sha1' : 'sha256', Buffer.from(toSign), key).toString(
      'base64',
    );
    return message;
  }
  const postSns = (message: unknown) =>
    t.app.request('/events/s3/sns', {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' },
      body: typeof message === 'string' ? message : JSON.stringify(message),
    });
  const notification = (records: { name: string; key: string }[], version: '1' | '2' = '1') =>
    snsMessage(
      'Notification',
      { Subject: 'Amazon S3 Notification', Message: JSON.stringify(s3Event(t.store.bucket, records)) },
      version,
    );
  const titled = (title: string) => t.count('images', `owner_id = '${ownerId}' AND title = '${title}'`);

  it('confirms a subscription of the configured topic by its SNS URL', async () => {
    const subscribe = 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=abc';
    const res = await postSns(
      snsMessage('SubscriptionConfirmation', {
        Token: 'abc',
        Message: 'You have chosen to subscribe…',
        SubscribeURL: subscribe,
      }),
    );
    expect(res.status).toBe(200);
    expect(fetched).toContain(subscribe);
    // A subscription URL elsewhere is not followed.
    const elsewhere = await postSns(
      snsMessage('SubscriptionConfirmation', {
        Token: 'abc',
        Message: 'm',
        SubscribeURL: 'https://evil.example/?Action=ConfirmSubscription',
      }),
    );
    expect(elsewhere.status).toBe(403);
    expect(fetched.some((u) => u.includes('evil.example'))).toBe(false);
    // SNS sends a confirmation again when the first answer failed: it is tried again, not ignored.
    const flakyUrl = 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=flaky';
    const flaky = snsMessage('SubscriptionConfirmation', {
      Token: 'flaky',
      Message: 'm',
      SubscribeURL: flakyUrl,
    });
    expect((await postSns(flaky)).status).toBe(503);
    expect((await postSns(flaky)).status).toBe(200);
    expect(fetched.filter((u) => u === flakyUrl)).toHaveLength(2);
  });

  it('picks up an object created and then removed, as told by signed notifications (SHA-1 and SHA-256)', async () => {
    const objectKey = `users/${ownerId}/originals/pier at night.jpg`;
    await t.store.storage.put(objectKey, await makeJpeg(200, 150), 'image/jpeg');
    const res = await postSns(notification([{ name: 'ObjectCreated:Put', key: objectKey }]));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ changes: 1 });
    await t.services.outsideChanges.idle();
    await t.settle();
    expect(await titled('pier at night')).toBe(1);

    const { original_key } = await t.services.database.q
      .selectFrom('images')
      .select('original_key')
      .where('title', '=', 'pier at night')
      .executeTakeFirstOrThrow();
    await t.store.storage.delete(original_key);
    expect(
      (await postSns(notification([{ name: 'ObjectRemoved:Delete', key: original_key }], '2'))).status,
    ).toBe(200);
    await t.services.outsideChanges.idle();
    expect(await t.count('images', `title = 'pier at night' AND trashed_at IS NOT NULL`)).toBe(1);
  });

  it('refuses a forged, re-signed elsewhere, or foreign message before it names a key', async () => {
    const objectKey = `users/${ownerId}/originals/forged.jpg`;
    await t.store.storage.put(objectKey, await makeJpeg(64, 48), 'image/jpeg');
    const good = notification([{ name: 'ObjectCreated:Put', key: objectKey }]);
    const before = fetched.length;
    const { Timestamp: _, ...withoutTimestamp } = good;
    const old = snsMessage('Notification', {
      Message: good.Message as string,
      Timestamp: '2020-01-01T00:00:00.000Z',
    });
    const cases: [string, unknown, number][] = [
      ['message changed after signing', { ...good, Message: good.Message?.replace('forged', 'other') }, 403],
      ['signature of another message', { ...good, Signature: notification([]).Signature }, 403],
      ['another topic', { ...good, TopicArn: 'arn:aws:sns:us-east-1:999999999999:theirs' }, 403],
      ['certificate over http', { ...good, SigningCertURL: CERT_URL.replace('https', 'http') }, 403],
      [
        'certificate on a look-alike host',
        { ...good, SigningCertURL: 'https://sns.us-east-1.amazonaws.com.evil.example/c.pem' },
        403,
      ],
      [
        'certificate with user info',
        { ...good, SigningCertURL: 'https://sns.us-east-1.amazonaws.com@evil.example/c.pem' },
        403,
      ],
      [
        'certificate not a .pem',
        { ...good, SigningCertURL: 'https://sns.us-east-1.amazonaws.com/c.txt' },
        403,
      ],
      ['certificate with a query', { ...good, SigningCertURL: `${CERT_URL}?v=1` }, 403],
      [
        'certificate of the S3 bucket named "sns"',
        {
          ...good,
          SigningCertURL: 'https://sns.s3-accelerate.amazonaws.com/SimpleNotificationService-0123abcd.pem',
        },
        403,
      ],
      [
        'certificate of another region than the topic’s',
        { ...good, SigningCertURL: CERT_URL.replace('us-east-1', 'eu-west-1') },
        403,
      ],
      ['a type named like an object property', { ...good, Type: 'constructor' }, 400],
      ['no Timestamp', withoutTimestamp, 400],
      [
        'a MessageId carrying a Timestamp',
        { ...good, MessageId: 'id-1\nTimestamp\n2020-01-01T00:00:00Z' },
        400,
      ],
      ['an old message, signed', old, 403],
      ['signature version 3', { ...good, SignatureVersion: '3' }, 400],
      ['not JSON', 'Type=Notification', 400],
      ['a JSON array', '[1,2]', 400],
      ['an unknown type', { ...good, Type: 'Other' }, 400],
    ];
    for (const [what, body, status] of cases) expect((await postSns(body)).status, what).toBe(status);
    // None of them fetched anything but the one certificate already known.
    expect(fetched.slice(before).every((u) => u === CERT_URL)).toBe(true);
    await t.services.outsideChanges.idle();
    expect(await titled('forged')).toBe(0);
    // The same message twice (SNS retries) is taken once.
    expect(await (await postSns(good)).json()).toEqual({ changes: 1 });
    expect(await (await postSns(good)).json()).toEqual({ changes: 0 });
    await t.services.outsideChanges.idle();
    await t.settle();
    expect(await titled('forged')).toBe(1);
    expect((await postSns('x'.repeat(300 * 1024))).status).toBe(413);
  });

  it('takes MinIO’s webhook with its bearer token only', async () => {
    const objectKey = `users/${ownerId}/originals/minio photo.jpg`;
    await t.store.storage.put(objectKey, await makeJpeg(64, 48), 'image/jpeg');
    // MinIO's shape: s3: prefixed event names, keys escaped like Go's url.QueryEscape ("/" too).
    const body = JSON.stringify({
      EventName: 's3:ObjectCreated:Put',
      Key: `${t.store.bucket}/${objectKey}`,
      Records: [
        {
          eventVersion: '2.0',
          eventSource: 'minio:s3',
          eventName: 's3:ObjectCreated:Put',
          s3: {
            bucket: { name: t.store.bucket },
            object: {
              key: encodeURIComponent(objectKey).replace(/%20/g, '+'),
              size: 10,
              eTag: 'x',
              contentType: 'image/jpeg',
            },
          },
        },
      ],
    });
    const post = (authorization?: string) =>
      t.app.request('/events/s3/minio', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(authorization ? { Authorization: authorization } : {}),
        },
        body,
      });
    expect((await post()).status).toBe(401);
    expect((await post('Bearer wrong-token-of-the-same-size')).status).toBe(401);
    expect((await post(`Bearer ${MINIO_TOKEN}x`)).status).toBe(401);
    await t.services.outsideChanges.idle();
    expect(await titled('minio photo')).toBe(0);
    const res = await post(`Bearer ${MINIO_TOKEN}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ changes: 1 });
    await t.services.outsideChanges.idle();
    await t.settle();
    expect(await titled('minio photo')).toBe(1);
  });

  it('reads any document without failing: only named changes in the bucket come out (fuzz)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const changes = eventChanges(value, 'gallery');
        expect(Array.isArray(changes)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(eventChanges({ Service: 'Amazon S3', Event: 's3:TestEvent' }, 'gallery')).toEqual([]);
    expect(
      eventChanges(
        s3Event('another-bucket', [{ name: 'ObjectCreated:Put', key: 'users/a/originals/x' }]),
        'gallery',
      ),
    ).toEqual([]);
    expect(
      eventChanges(s3Event('gallery', [{ name: 'ObjectCreated:Copy', key: 'a b+c.jpg' }]), 'gallery'),
    ).toMatchObject([{ type: 'created', key: 'a b+c.jpg' }]);
    expect(snsHostOf('arn:aws-cn:sns:cn-north-1:111122223333:t')).toBe('sns.cn-north-1.amazonaws.com.cn');
    expect(snsHostOf('arn:aws:sns:us-east-1:1:t')).toBeNull();
    const host = 'sns.us-east-1.amazonaws.com';
    expect(isSnsUrl(CERT_URL, host, { certificate: true })).toBe(true);
    expect(isSnsUrl('https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0a.pem', host)).toBe(
      false,
    );
    expect(isSnsUrl('https://sns.us-east-1.amazonaws.com./SimpleNotificationService-0a.pem', host)).toBe(
      false,
    );
    expect(isSnsUrl('https://sns.us-east-1.amazonaws.com/x.pem', host, { certificate: true })).toBe(false);
  });

  it('answers any SNS body with a refusal, never a failure (fuzz)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        async (text) => {
          try {
            await t.services.bucketEvents.fromSns(text);
          } catch (err) {
            expect(err).toBeInstanceOf(DomainError);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('bucket events, not configured', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp();
  });
  afterAll(() => t.close());

  it('has no endpoints', async () => {
    for (const path of ['/events/s3/sns', '/events/s3/minio'])
      expect((await t.app.request(path, { method: 'POST', body: '{}' })).status, path).toBe(404);
  });
});
