import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { StorageEncryption } from './storage/storage.js';

const booleanFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const urlOrigin = z
  .url({ message: 'must be a URL such as https://photos.example.com' })
  .refine((v) => /^https?:\/\//.test(v), 'must start with http:// or https://')
  .transform((v) => new URL(v).origin);

const seconds = (fallback: number) => z.coerce.number().int().min(1).max(86_400).default(fallback);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .url({ message: 'must be a URL such as postgres://gallery:secret@db.example.com:5432/gallery' })
    .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must start with postgres:// or postgresql://')
    .optional(),
  APP_ORIGIN: urlOrigin.optional(),
  SIGNUP: z.enum(['open', 'invite', 'closed']).default('invite'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TRUST_PROXY: booleanFromEnv.default(false),
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(25 * 1024 * 1024),
  S3_ENDPOINT: z.url().optional(),
  S3_PUBLIC_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_BUCKET: z.string().min(3).max(63).optional(),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: booleanFromEnv.optional(),
  S3_SSE: z.enum(['AES256', 'aws:kms']).optional(),
  S3_SSE_KMS_KEY_ID: z.string().min(1).optional(),
  S3_EVENTS_SNS_TOPIC_ARN: z.string().min(1).optional(),
  S3_EVENTS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  SMTP_URL: z
    .url({ message: 'must be a URL such as smtps://user:pass@mail.example.com:465' })
    .refine((v) => /^smtps?:\/\//.test(v), 'must start with smtp:// or smtps://')
    .optional(),
  NOTIFY_EMAIL_FROM: z.string().min(3).max(320).optional(),
  WEBHOOK_URL: z
    .url({ message: 'must be a URL such as https://hooks.example.com/s3-gallery' })
    .refine((v) => /^https?:\/\//.test(v), 'must start with http:// or https://')
    .optional(),
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).optional(),
  TRASH_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  ACCEPT: z.enum(['images', 'any'], { error: 'must be images or any' }).default('images'),
  GUEST_LINKS: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  RECONCILE_INTERVAL: z
    .string()
    .regex(/^(off|\d{1,5}[smh])$/, { error: 'must be off or a number with s, m or h (e.g. 1h, 30m)' })
    .default('1h'),
  SIGNUPS_PER_IP_PER_HOUR: z.coerce.number().int().min(1).max(1_000_000).default(5),
  REQUEST_TIMEOUT_SECONDS: seconds(30),
  UPLOAD_TIMEOUT_SECONDS: seconds(30 * 60),
  IDLE_TIMEOUT_SECONDS: seconds(30),
  MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  PROCESSING_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  PROCESSING_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
});

export type Signup = 'open' | 'invite' | 'closed';

interface ExternalS3Config {
  /** what every PutObject, CopyObject and POST policy asks the bucket to encrypt with (S3_SSE) */
  encryption?: StorageEncryption;
  endpoint: string;
  publicEndpoint: string;
  region: string;
  bucket: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  forcePathStyle: boolean;
}

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  dataDir: string;
  /** Where the metadata lives: DATA_DIR/gallery.db, or a PostgreSQL database shared by every instance. */
  database: { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };
  appOrigin: string;
  isSecureOrigin: boolean;
  signup: Signup;
  logLevel: string;
  trustProxy: boolean;
  maxUploadBytes: number;
  /** undefined = the embedded store on this app's own port under /s3 */
  s3?: ExternalS3Config;
  notify: NotifyConfig;
  /** null = keep every audit entry */
  auditRetentionDays: number | null;
  /** whole days an image stays in the trash before the server deletes it for good */
  trashDays: number;
  /** what uploads may be: our image types only, or any file (kept as a file card, never shown inline) */
  accept: 'images' | 'any';
  /** GUEST_LINKS: whether people may make guest upload links (off: none is made, none takes files) */
  guestLinks: boolean;
  /** how often the server reconciles by itself; null: never (RECONCILE_INTERVAL=off) */
  reconcileIntervalMs: number | null;
  /** event notifications from an external bucket (S3_EVENTS_SNS_TOPIC_ARN, S3_EVENTS_TOKEN) */
  bucketEvents: { snsTopicArns: string[]; minioToken: string | null };
  /** open sign-ups (SIGNUP=open, no invite) allowed per client address per hour */
  signupsPerIpPerHour: number;
  http: HttpLimits;
  processing: ProcessingConfig;
}

/** The background workers that make renditions (src/jobs/queue.ts). */
interface ProcessingConfig {
  /** images processed at once by this instance: the machine's cores unless set */
  workers: number;
  /** a job claimed by a worker that died is taken again after this long */
  leaseMs: number;
}

/** How long clients may take to send, and how many may be connected at once. */
interface HttpLimits {
  /** request headers, and the whole of an app request (forms, JSON), must arrive within this */
  requestTimeoutMs: number;
  /** the whole of a request to the embedded store (/s3: uploads) must arrive within this */
  uploadTimeoutMs: number;
  /** no byte for this long ends a request still arriving, or an answer the client stopped reading */
  idleTimeoutMs: number;
  maxConnections: number;
}

/** Where change notifications go besides the in-app list; each channel is off when unset. */
export interface NotifyConfig {
  smtpUrl?: string;
  emailFrom: string;
  webhook?: { url: string; secret: string };
}

export class ConfigError extends Error {}

/** Reads and validates every setting once; the message names each variable that is wrong. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const blankless = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(blankless);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const appOrigin = e.APP_ORIGIN ?? `http://localhost:${e.PORT}`;
  let s3: ExternalS3Config | undefined;
  if (e.S3_ENDPOINT) {
    if (!e.S3_BUCKET)
      throw new ConfigError('Invalid configuration:\n  S3_BUCKET: required when S3_ENDPOINT is set');
    if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) {
      throw new ConfigError(
        'Invalid configuration:\n  S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: set both, or neither to use the default AWS credential chain',
      );
    }
    if (e.S3_SSE_KMS_KEY_ID && e.S3_SSE !== 'aws:kms') {
      throw new ConfigError('Invalid configuration:\n  S3_SSE_KMS_KEY_ID: only with S3_SSE=aws:kms');
    }
    s3 = {
      ...(e.S3_SSE
        ? {
            encryption: {
              type: e.S3_SSE,
              ...(e.S3_SSE_KMS_KEY_ID ? { kmsKeyId: e.S3_SSE_KMS_KEY_ID } : {}),
            },
          }
        : {}),
      endpoint: e.S3_ENDPOINT,
      publicEndpoint: e.S3_PUBLIC_ENDPOINT ?? e.S3_ENDPOINT,
      region: e.S3_REGION,
      bucket: e.S3_BUCKET,
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? false,
      ...(e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
        ? { credentials: { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY } }
        : {}),
    };
  }
  if ((e.S3_EVENTS_SNS_TOPIC_ARN || e.S3_EVENTS_TOKEN) && !s3) {
    throw new ConfigError(
      'Invalid configuration:\n  S3_EVENTS_SNS_TOPIC_ARN / S3_EVENTS_TOKEN: for an external bucket (S3_ENDPOINT and S3_BUCKET); the embedded store tells the app of its changes itself',
    );
  }
  if (e.S3_SSE && !s3) {
    throw new ConfigError(
      "Invalid configuration:\n  S3_SSE: for an external bucket (S3_ENDPOINT and S3_BUCKET); the embedded store keeps objects on your disk, unencrypted by itself (encrypt DATA_DIR's disk), and refuses encryption headers",
    );
  }
  if (e.DATABASE_URL && !s3) {
    throw new ConfigError(
      'Invalid configuration:\n  DATABASE_URL: PostgreSQL is for running several instances, and the embedded store keeps its files on one machine; set S3_ENDPOINT and S3_BUCKET to a bucket every instance reaches (MinIO, Garage, R2, AWS S3 or a standalone s3-store)',
    );
  }
  if (e.WEBHOOK_URL && !e.WEBHOOK_SECRET) {
    throw new ConfigError(
      'Invalid configuration:\n  WEBHOOK_SECRET: required when WEBHOOK_URL is set (receivers check the signature with it)',
    );
  }
  const notify: NotifyConfig = {
    emailFrom: e.NOTIFY_EMAIL_FROM ?? `s3-gallery <s3-gallery@${new URL(appOrigin).hostname}>`,
    ...(e.SMTP_URL ? { smtpUrl: e.SMTP_URL } : {}),
    ...(e.WEBHOOK_URL && e.WEBHOOK_SECRET
      ? { webhook: { url: e.WEBHOOK_URL, secret: e.WEBHOOK_SECRET } }
      : {}),
  };
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.DATA_DIR),
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL }
      : { kind: 'sqlite', file: path.join(path.resolve(e.DATA_DIR), 'gallery.db') },
    appOrigin,
    isSecureOrigin: appOrigin.startsWith('https://'),
    signup: e.SIGNUP,
    logLevel: e.LOG_LEVEL,
    trustProxy: e.TRUST_PROXY,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    ...(s3 ? { s3 } : {}),
    notify,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS ?? null,
    trashDays: e.TRASH_DAYS,
    accept: e.ACCEPT,
    guestLinks: e.GUEST_LINKS === 'on',
    reconcileIntervalMs: intervalMs(e.RECONCILE_INTERVAL),
    bucketEvents: {
      snsTopicArns: (e.S3_EVENTS_SNS_TOPIC_ARN ?? '')
        .split(',')
        .map((arn) => arn.trim())
        .filter(Boolean),
      minioToken: e.S3_EVENTS_TOKEN ?? null,
    },
    signupsPerIpPerHour: e.SIGNUPS_PER_IP_PER_HOUR,
    http: {
      requestTimeoutMs: e.REQUEST_TIMEOUT_SECONDS * 1000,
      uploadTimeoutMs: e.UPLOAD_TIMEOUT_SECONDS * 1000,
      idleTimeoutMs: e.IDLE_TIMEOUT_SECONDS * 1000,
      maxConnections: e.MAX_CONNECTIONS,
    },
    processing: {
      workers: e.PROCESSING_WORKERS ?? os.availableParallelism(),
      leaseMs: e.PROCESSING_LEASE_SECONDS * 1000,
    },
  };
}

/** "30s", "15m", "1h" in ms; null for "off". At least a minute: a reconcile lists the whole bucket. */
function intervalMs(text: string): number | null {
  if (text === 'off') return null;
  const unit = { s: 1000, m: 60_000, h: 3_600_000 }[text.slice(-1) as 's' | 'm' | 'h'];
  return Math.max(60_000, Number(text.slice(0, -1)) * unit);
}
