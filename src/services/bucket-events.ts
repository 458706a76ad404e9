import { type KeyObject, timingSafeEqual, verify, X509Certificate } from 'node:crypto';
import type { StoreChange } from '@s3-gallery/s3-store';
import { Forbidden, Invalid, Unauthenticated } from './errors.js';

/**
 * Event notifications from an external bucket, so its changes are picked up within seconds as the
 * embedded store's are: AWS S3's delivered by SNS over HTTPS (each message's signature checked
 * against an SNS certificate, the topic pinned) and MinIO's webhooks (a bearer token). An event only
 * names a key: the pickup then reads the bucket itself, so a message can make the app look, never
 * tell it what is there.
 */
export interface BucketEventsConfig {
  /** the bucket events must name (others are ignored) */
  bucket: string;
  /** SNS topics whose messages are taken (S3_EVENTS_SNS_TOPIC_ARN); none: the SNS endpoint is off */
  snsTopicArns: readonly string[];
  /** the token MinIO's webhook sends (S3_EVENTS_TOKEN); null: the MinIO endpoint is off */
  minioToken: string | null;
}

/** An SNS host, as AWS's own validators require of a certificate's and a subscription's URL. */
const SNS_HOST = /^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$/;
/** The fields each message type signs, in this order, each when present (AWS's documentation). */
const SIGNED_FIELDS: Record<string, readonly string[]> = {
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
  UnsubscribeConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
};
const MAX_CERTIFICATES = 16;
const REMEMBERED_MESSAGES = 1000;

/** Whether a URL is https on an SNS host, with nothing else in it that could point elsewhere. */
export function isSnsUrl(text: unknown, pathEnd = ''): boolean {
  if (typeof text !== 'string') return false;
  try {
    const url = new URL(text);
    return (
      url.protocol === 'https:' &&
      url.username === '' &&
      url.password === '' &&
      (url.port === '' || url.port === '443') &&
      SNS_HOST.test(url.hostname) &&
      url.pathname.endsWith(pathEnd)
    );
  } catch {
    return false;
  }
}

/** S3's key encoding in events: form-style (`+` a space), then percent-escapes; null when it does not decode. */
function decodeEventKey(key: unknown): string | null {
  if (typeof key !== 'string') return null;
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/**
 * The changes an S3 event document names in `bucket`: AWS's (`ObjectCreated:Put`…) and MinIO's
 * (`s3:ObjectCreated:Put`…) alike. S3's test event and anything else unknown name none.
 */
export function eventChanges(document: unknown, bucket: string): StoreChange[] {
  const records = (document as { Records?: unknown } | null)?.Records;
  if (!Array.isArray(records)) return [];
  const changes: StoreChange[] = [];
  for (const record of records.slice(0, 1000)) {
    const r = record as {
      eventName?: unknown;
      s3?: { bucket?: { name?: unknown }; object?: { key?: unknown; eTag?: unknown; size?: unknown } };
    } | null;
    if (typeof r?.eventName !== 'string' || r.s3?.bucket?.name !== bucket) continue;
    const name = r.eventName.replace(/^s3:/, '');
    const key = decodeEventKey(r.s3?.object?.key);
    if (!key) continue;
    if (name.startsWith('ObjectCreated:')) {
      const { eTag, size } = r.s3?.object ?? {};
      changes.push({
        type: 'created',
        key,
        etag: typeof eTag === 'string' ? eTag : '',
        size: typeof size === 'number' ? size : 0,
      });
    } else if (name.startsWith('ObjectRemoved:')) changes.push({ type: 'removed', key });
  }
  return changes;
}

export function createBucketEvents(deps: {
  config: BucketEventsConfig;
  /** the pickup of outside changes */
  notice: (change: StoreChange) => void;
  /** a GET of an SNS URL (a certificate, a subscription's confirmation); tests give their own */
  fetchText?: (url: string) => Promise<string>;
  log?: { info(fields: object, message: string): void };
}) {
  const { config } = deps;
  const fetchText = deps.fetchText ?? fetchSnsText;
  const certificates = new Map<string, Promise<KeyObject>>();
  const seen = new Set<string>();

  function publicKeyAt(url: string): Promise<KeyObject> {
    let key = certificates.get(url);
    if (!key) {
      if (certificates.size >= MAX_CERTIFICATES) certificates.clear();
      key = fetchText(url).then((pem) => new X509Certificate(pem).publicKey);
      // A failed fetch is tried again with the next message.
      key.catch(() => certificates.delete(url));
      certificates.set(url, key);
    }
    return key;
  }

  /** A message SNS signed: every check passes, or Invalid (malformed) / Forbidden (not ours, or forged). */
  async function verified(text: string): Promise<Record<string, string>> {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Invalid('The body is not an SNS message.');
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message))
      throw new Invalid('The body is not an SNS message.');
    const fields = SIGNED_FIELDS[String(message.Type)];
    if (!fields) throw new Invalid('Not an SNS message type this endpoint takes.');
    // Checked before anything is fetched: a topic not configured here is refused at once.
    if (typeof message.TopicArn !== 'string' || !config.snsTopicArns.includes(message.TopicArn))
      throw new Forbidden('Messages of that topic are not taken here.');
    const { SignatureVersion: version, Signature: signature, SigningCertURL: certUrl } = message;
    if ((version !== '1' && version !== '2') || typeof signature !== 'string')
      throw new Invalid('The message has no signature this endpoint can check.');
    if (!isSnsUrl(certUrl, '.pem')) throw new Forbidden('The signing certificate is not on an SNS host.');
    let toSign = '';
    for (const name of fields) {
      const value = message[name];
      if (value === undefined || (name === 'Subject' && value === null)) continue;
      if (typeof value !== 'string') throw new Invalid(`The message's ${name} is not text.`);
      toSign += `${name}\n${value}\n`;
    }
    const key = await publicKeyAt(certUrl as string).catch(() => {
      throw new Forbidden('The signing certificate could not be read.');
    });
    const ok = verify(
      version === '1' ? 'sha1' : 'sha256',
      Buffer.from(toSign, 'utf8'),
      key,
      Buffer.from(signature, 'base64'),
    );
    if (!ok) throw new Forbidden('The message signature does not match.');
    return message as Record<string, string>;
  }

  /** Once per message id: SNS retries with the same one. */
  function isNew(id: string): boolean {
    if (seen.has(id)) return false;
    if (seen.size >= REMEMBERED_MESSAGES) seen.delete(seen.values().next().value as string);
    seen.add(id);
    return true;
  }

  function take(document: unknown): number {
    const changes = eventChanges(document, config.bucket);
    for (const change of changes) deps.notice(change);
    return changes.length;
  }

  return {
    snsEnabled: config.snsTopicArns.length > 0,
    minioEnabled: config.minioToken !== null,

    /** One SNS delivery: a subscription confirmed, or a notification's S3 events picked up. */
    async fromSns(text: string): Promise<{ changes: number }> {
      const message = await verified(text);
      if (!isNew(message.MessageId ?? '')) return { changes: 0 };
      if (message.Type === 'SubscriptionConfirmation') {
        if (!isSnsUrl(message.SubscribeURL))
          throw new Forbidden('The subscription URL is not on an SNS host.');
        await fetchText(message.SubscribeURL as string);
        deps.log?.info({ topic: message.TopicArn }, 'S3 events: subscription to the SNS topic confirmed');
        return { changes: 0 };
      }
      if (message.Type !== 'Notification') return { changes: 0 };
      let document: unknown;
      try {
        document = JSON.parse(message.Message ?? '');
      } catch {
        return { changes: 0 }; // a message that is no S3 event: nothing to pick up
      }
      return { changes: take(document) };
    },

    /** One MinIO webhook delivery, with the bearer token MinIO was configured with. */
    fromMinio(authorization: string | undefined, text: string): { changes: number } {
      const expected = Buffer.from(`Bearer ${config.minioToken ?? ''}`);
      const given = Buffer.from(authorization ?? '');
      if (config.minioToken === null || given.length !== expected.length || !timingSafeEqual(given, expected))
        throw new Unauthenticated('The webhook token is not right.');
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch {
        throw new Invalid('The body is not an event.');
      }
      return { changes: take(document) };
    },
  };
}


/** A small GET of an SNS URL, over TLS with the usual certificate checks, within seconds. */
async function fetchSnsText(url: string): Promise<string> {
  if (!isSnsUrl(url)) throw new Error('not an SNS URL');
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`SNS answered ${res.status}`);
  const text = await res.text();
  if (text.length > 64 * 1024) throw new Error('the answer is too long');
  return text;
}
