import { type KeyObject, timingSafeEqual, verify, X509Certificate } from 'node:crypto';
import type { StoreChange } from '@s3-gallery/s3-store';
import { Forbidden, Invalid, Unauthenticated, Unavailable } from './errors.js';

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

/**
 * SNS's host for a topic: `sns.<region>.amazonaws.com` (`.com.cn` in China), the region and
 * partition read from the pinned topic's ARN. AWS's own validators take any `sns.*.amazonaws.com`,
 * which includes `sns.s3-accelerate.amazonaws.com`: the S3 bucket named "sns", whose owner could
 * serve any certificate there.
 */
export function snsHostOf(topicArn: string): string | null {
  const m = /^arn:(aws|aws-cn|aws-us-gov):sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_.-]+$/.exec(topicArn);
  if (!m) return null;
  return `sns.${m[2]}.amazonaws.com${m[1] === 'aws-cn' ? '.cn' : ''}`;
}
/** SNS's signing certificates are at /SimpleNotificationService-<hex>.pem. */
const CERTIFICATE_PATH = /^\/SimpleNotificationService-[0-9a-f]+\.pem$/;
/** How far a message's Timestamp may be from now (SNS retries within minutes). */
const MAX_AGE_MS = 60 * 60 * 1000;
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
const MAX_FETCHES = 2;
const REMEMBERED_MESSAGES = 1000;

/**
 * Whether a URL is https on exactly `host`, with nothing else in it that could point elsewhere; for
 * a certificate, also exactly SNS's certificate path and no query (so a topic has a handful of
 * possible certificate URLs, not one per request).
 */
export function isSnsUrl(text: unknown, host: string, o: { certificate?: boolean } = {}): boolean {
  if (typeof text !== 'string') return false;
  try {
    const url = new URL(text);
    return (
      url.protocol === 'https:' &&
      url.username === '' &&
      url.password === '' &&
      (url.port === '' || url.port === '443') &&
      url.hostname === host &&
      (!o.certificate || (CERTIFICATE_PATH.test(url.pathname) && url.search === '' && url.hash === ''))
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

  let fetching = 0;
  /**
   * The public key of a certificate, fetched once per URL (messages at once share the fetch). Only
   * certificates that were read stay: a URL SNS does not serve is forgotten, so made-up names can
   * neither fill the cache nor push SNS's out; and at most MAX_FETCHES are fetched at once.
   */
  function publicKeyAt(url: string): Promise<KeyObject> {
    let key = certificates.get(url);
    if (!key) {
      if (fetching >= MAX_FETCHES)
        return Promise.reject(new Unavailable('Busy: send the message again later.'));
      if (certificates.size >= MAX_CERTIFICATES) certificates.clear();
      fetching++;
      key = fetchText(url)
        .then((pem) => new X509Certificate(pem).publicKey)
        .finally(() => fetching--);
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
    const type = String(message.Type);
    const fields = Object.hasOwn(SIGNED_FIELDS, type) ? SIGNED_FIELDS[type] : undefined;
    if (!fields) throw new Invalid('Not an SNS message type this endpoint takes.');
    // Checked before anything is fetched: a topic not configured here, or a certificate anywhere but
    // its topic's SNS host, is refused at once, all alike.
    const host =
      typeof message.TopicArn === 'string' && config.snsTopicArns.includes(message.TopicArn)
        ? snsHostOf(message.TopicArn)
        : null;
    const { SignatureVersion: version, Signature: signature, SigningCertURL: certUrl } = message;
    if (!host || !isSnsUrl(certUrl, host, { certificate: true }))
      throw new Forbidden('This endpoint does not take that message.');
    if ((version !== '1' && version !== '2') || typeof signature !== 'string')
      throw new Invalid('The message has no signature this endpoint can check.');
    // Every field a message of its type always has must be there, on one line (all but Message):
    // a field left out cannot have its text carried by another ("id\nTimestamp\n…").
    let toSign = '';
    for (const name of fields) {
      const value = message[name];
      if ((value === undefined || value === null) && name === 'Subject') continue;
      if (typeof value !== 'string') throw new Invalid(`The message has no ${name}.`);
      if (name !== 'Message' && /[\r\n]/.test(value))
        throw new Invalid(`The message's ${name} is not one line.`);
      toSign += `${name}\n${value}\n`;
    }
    const at = Date.parse(message.Timestamp as string);
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_AGE_MS)
      throw new Forbidden('The message is too old, or from the future.');
    const key = await publicKeyAt(certUrl as string).catch((err: unknown) => {
      throw err instanceof Unavailable ? err : new Forbidden('The signing certificate could not be read.');
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

  /** Remembers a message handled, so SNS's retries of it (same id) are taken once. */
  function remember(id: string): void {
    if (seen.size >= REMEMBERED_MESSAGES) seen.delete(seen.values().next().value as string);
    seen.add(id);
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
      const id = message.MessageId as string;
      if (seen.has(id)) return { changes: 0 };
      if (message.Type === 'SubscriptionConfirmation') {
        if (!isSnsUrl(message.SubscribeURL, snsHostOf(message.TopicArn as string) ?? ''))
          throw new Forbidden('The subscription URL is not on the topic’s SNS host.');
        // Remembered only once confirmed: SNS's retry of a confirmation that failed tries again.
        await fetchText(message.SubscribeURL as string).catch(() => {
          throw new Unavailable('SNS could not be reached to confirm the subscription; it sends it again.');
        });
        remember(id);
        deps.log?.info({ topic: message.TopicArn }, 'S3 events: subscription to the SNS topic confirmed');
        return { changes: 0 };
      }
      remember(id);
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
  if (!/^https:\/\/sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\//.test(url)) throw new Error('not an SNS URL');
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`SNS answered ${res.status}`);
  const text = await res.text();
  if (text.length > 64 * 1024) throw new Error('the answer is too long');
  return text;
}
