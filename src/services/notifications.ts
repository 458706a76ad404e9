import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { NotifyConfig } from '../config.js';
import type { Db } from '../db/connection.js';
import type { Clock } from './clock.js';
import { idCursor, writeCursor } from './cursors.js';
import type { User } from './users.js';

export type ChangeAction = 'upload' | 'replace' | 'delete' | 'outside_upload';

export interface Change {
  id: number;
  at: number;
  actorId: string | null;
  actorEmail: string | null;
  action: ChangeAction;
  imageId: string | null;
  summary: string;
}

interface ChangeRow {
  id: number;
  at: number;
  actor_id: string | null;
  actor_email: string | null;
  action: ChangeAction;
  image_id: string | null;
  summary: string;
}

interface OutboxRow {
  id: number;
  channel: 'email' | 'webhook';
  recipient: string;
  change_id: number;
  attempts: number;
}

const rowToChange = (r: ChangeRow): Change => ({
  id: r.id,
  at: r.at,
  actorId: r.actor_id,
  actorEmail: r.actor_email,
  action: r.action,
  imageId: r.image_id,
  summary: r.summary,
});

export const CHANGES_PAGE_SIZE = 50;
/** An admin gets at most one email per this interval; changes in between wait and go together. */
const EMAIL_INTERVAL_MS = 60 * 1000;
/** Webhooks one worker sends per round at most, so one round ends and emails get their turn. */
const WEBHOOKS_PER_ROUND = 50;
const BACKOFF_BASE_MS = 30 * 1000;
const BACKOFF_MAX_MS = 60 * 60 * 1000;
const WEBHOOK_TIMEOUT_MS = 10 * 1000;
/** Ends an SMTP connection that stalls, so one digest's send stays well inside a claim's lease. */
const SMTP_TIMEOUTS = { connectionTimeout: 20 * 1000, greetingTimeout: 20 * 1000, socketTimeout: 30 * 1000 };
/**
 * How long a claimed outbox row stays with the instance that claimed it: longer than one delivery
 * can take (a webhook's timeout, a digest's SMTP timeouts), so only a crashed worker's claims lapse.
 */
export const OUTBOX_LEASE_MS = 2 * 60 * 1000;
const SIGNATURE_HEADER = 'X-S3-Gallery-Signature';

const backoffMs = (attempts: number) => Math.min(BACKOFF_BASE_MS * 2 ** (attempts - 1), BACKOFF_MAX_MS);

/** The signature a webhook receiver recomputes over the raw body with the shared secret. */
const webhookSignature = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

const ACTION_WORDS: Record<ChangeAction, string> = {
  upload: 'uploaded',
  replace: 'replaced',
  delete: 'deleted',
  outside_upload: 'found in the bucket (put there outside the app)',
};

export function describeChange(c: Pick<Change, 'actorEmail' | 'action' | 'summary'>): string {
  return `${c.actorEmail ?? 'Someone'} ${ACTION_WORDS[c.action]}: ${c.summary}`;
}

export interface NotificationDeps {
  db: Db;
  clock: Clock;
  config: NotifyConfig;
  appOrigin: string;
  /** whose name this process claims deliveries in (one id per process, shared with the job leases) */
  instanceId: string;
}

export function createNotifications({ db, clock, config, appOrigin, instanceId }: NotificationDeps) {
  const insertChange = db.prepare(
    'INSERT INTO changes (at, actor_id, actor_email, action, image_id, summary) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const adminEmails = db
    .prepare("SELECT email FROM users WHERE role = 'admin' AND is_disabled = 0 ORDER BY created_at")
    .pluck();
  const insertOutbox = db.prepare(
    'INSERT INTO outbox (channel, recipient, change_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)',
  );
  // Claims: every instance claims the rows it sends (claimed_by = its id, until the lease ends) and
  // marks only rows it still holds, so two instances never send one row. On SQLite the IMMEDIATE
  // transaction around each claim serializes the workers. On PostgreSQL the same statements work,
  // with two differences: the inner SELECTs end in "FOR UPDATE SKIP LOCKED" (a row another worker is
  // claiming is skipped, not waited for), and a digest's claim first takes
  // pg_advisory_xact_lock(hashtext('s3-gallery digest ' || recipient)), so the interval check and the
  // claim for one admin run one instance at a time, as the IMMEDIATE transaction makes them here.
  const UNCLAIMED = '(claimed_until IS NULL OR claimed_until <= ?)';
  const claimNextWebhook = db.prepare(
    `UPDATE outbox SET claimed_by = ?, claimed_until = ?
      WHERE id = (SELECT id FROM outbox
        WHERE channel = 'webhook' AND sent_at IS NULL AND next_attempt_at <= ? AND ${UNCLAIMED}
        ORDER BY id LIMIT 1)
      RETURNING id, channel, recipient, change_id, attempts`,
  );
  const dueEmailRecipients = db
    .prepare(
      `SELECT DISTINCT recipient FROM outbox
        WHERE channel = 'email' AND sent_at IS NULL AND next_attempt_at <= ? AND ${UNCLAIMED}`,
    )
    .pluck();
  /** Whether another instance is sending this admin a digest now (its claim has not lapsed). */
  const isClaimedFor = db
    .prepare(
      `SELECT 1 FROM outbox WHERE channel = 'email' AND recipient = ? AND sent_at IS NULL
        AND claimed_until > ? LIMIT 1`,
    )
    .pluck();
  const claimUnsentFor = db.prepare(
    `UPDATE outbox SET claimed_by = ?, claimed_until = ?
      WHERE id IN (SELECT id FROM outbox
        WHERE channel = 'email' AND recipient = ? AND sent_at IS NULL AND ${UNCLAIMED}
        ORDER BY id LIMIT 200)
      RETURNING id, channel, recipient, change_id, attempts`,
  );
  const lastSentTo = db
    .prepare(
      `SELECT max(sent_at) FROM outbox WHERE channel = 'email' AND recipient = ? AND sent_at IS NOT NULL`,
    )
    .pluck();
  const changeById = db.prepare('SELECT * FROM changes WHERE id = ?');
  const markSent = db.prepare(
    `UPDATE outbox SET sent_at = ?, last_error = NULL, claimed_by = NULL, claimed_until = NULL
      WHERE id = ? AND claimed_by = ?`,
  );
  const markFailed = db.prepare(
    `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
        claimed_by = NULL, claimed_until = NULL
      WHERE id = ? AND claimed_by = ?`,
  );
  const firstPage = db.prepare('SELECT * FROM changes ORDER BY id DESC LIMIT ?');
  const nextPage = db.prepare('SELECT * FROM changes WHERE id < ? ORDER BY id DESC LIMIT ?');
  const pendingCount = db.prepare('SELECT count(*) FROM outbox WHERE sent_at IS NULL').pluck();
  const lastErrorStmt = db.prepare(
    'SELECT last_error FROM outbox WHERE sent_at IS NULL AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1',
  );

  // nodemailer loads with the first email, so a server without SMTP never pays for it.
  let transport: Promise<import('nodemailer').Transporter> | null = null;
  const mailer = (url: string) => {
    transport ??= import('nodemailer').then((m) => m.default.createTransport({ ...SMTP_TIMEOUTS, url }));
    return transport;
  };
  let running: Promise<void> | null = null;

  const sent = (row: OutboxRow, at: number) => markSent.run(at, row.id, instanceId);

  function fail(row: OutboxRow, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    markFailed.run(clock() + backoffMs(row.attempts + 1), message.slice(0, 500), row.id, instanceId);
  }

  /** The next due webhook nobody holds, now held by this instance: one at a time, so a lease covers its send. */
  const claimWebhook = db.transaction((now: number) =>
    claimNextWebhook.get(instanceId, now + OUTBOX_LEASE_MS, now, now),
  );

  /**
   * Every unsent row for one admin, all held by this instance, or none: none when the last digest
   * went less than EMAIL_INTERVAL_MS ago or another instance is sending this admin one now.
   */
  const claimDigest = db.transaction((recipient: string, now: number): OutboxRow[] => {
    const last = lastSentTo.get(recipient) as number | null;
    if (last !== null && now - last < EMAIL_INTERVAL_MS) return [];
    if (isClaimedFor.get(recipient, now) !== undefined) return [];
    return claimUnsentFor.all(instanceId, now + OUTBOX_LEASE_MS, recipient, now) as OutboxRow[];
  });

  async function sendWebhook(row: OutboxRow): Promise<void> {
    const change = changeById.get(row.change_id) as ChangeRow | undefined;
    if (!change || !config.webhook) {
      sent(row, clock()); // nothing left to say, or the channel was turned off
      return;
    }
    const c = rowToChange(change);
    const body = JSON.stringify({
      delivery: row.id,
      change: {
        id: c.id,
        at: new Date(c.at).toISOString(),
        action: c.action,
        actor: c.actorId ? { id: c.actorId, email: c.actorEmail } : null,
        imageId: c.imageId,
        summary: c.summary,
        url: c.imageId && c.action !== 'delete' ? `${appOrigin}/images/${c.imageId}` : null,
      },
    });
    const res = await fetch(config.webhook.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 's3-gallery',
        [SIGNATURE_HEADER]: webhookSignature(config.webhook.secret, body),
        'X-S3-Gallery-Delivery': String(row.id),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.status < 200 || res.status > 299) throw new Error(`webhook answered ${res.status}`);
    sent(row, clock());
  }

  /** One email per admin listing every change still waiting, at most once per EMAIL_INTERVAL_MS. */
  async function sendDigest(recipient: string, log?: Logger): Promise<void> {
    const rows = claimDigest.immediate(recipient, clock());
    if (rows.length === 0) return;
    if (!config.smtpUrl) {
      db.transaction(() => {
        for (const row of rows) sent(row, clock());
      })();
      return;
    }
    const changes = rows
      .map((row) => changeById.get(row.change_id) as ChangeRow | undefined)
      .filter((r): r is ChangeRow => r !== undefined)
      .map(rowToChange);
    const lines = changes.map((c) => {
      const link = c.imageId && c.action !== 'delete' ? `\n    ${appOrigin}/images/${c.imageId}` : '';
      return `- ${new Date(c.at).toISOString()} ${describeChange(c)}${link}`;
    });
    try {
      await (await mailer(config.smtpUrl)).sendMail({
        from: config.emailFrom,
        to: recipient,
        subject: `s3-gallery: ${changes.length} image change${changes.length === 1 ? '' : 's'}`,
        text: `${lines.join('\n')}\n\nAll changes: ${appOrigin}/admin/changes\n`,
      });
      const now = clock();
      db.transaction(() => {
        for (const row of rows) sent(row, now);
      })();
    } catch (err) {
      log?.warn({ err, changes: rows.length }, 'email digest failed; will retry');
      db.transaction(() => {
        for (const row of rows) fail(row, err);
      })();
    }
  }

  async function deliverOnce(log?: Logger): Promise<void> {
    for (let i = 0; i < WEBHOOKS_PER_ROUND; i++) {
      const row = claimWebhook.immediate(clock()) as OutboxRow | undefined;
      if (!row) break;
      try {
        await sendWebhook(row);
      } catch (err) {
        log?.warn({ err, delivery: row.id }, 'webhook delivery failed; will retry');
        fail(row, err);
      }
    }
    const now = clock();
    for (const recipient of dueEmailRecipients.all(now, now) as string[]) await sendDigest(recipient, log);
  }

  /** Sends what is due; a second call while one runs waits for it instead of sending twice. */
  function deliver(log?: Logger): Promise<void> {
    running ??= deliverOnce(log).finally(() => {
      running = null;
    });
    return running;
  }

  return {
    deliver,

    /**
     * Records a change by someone who is not an admin, for the in-app list and every channel.
     * Call it inside the transaction that makes the change, so the two commit or fail together.
     */
    recordChange(
      actor: Pick<User, 'id' | 'email' | 'role'> | null,
      action: ChangeAction,
      imageId: string,
      summary: string,
    ) {
      // Admins know what they did themselves; a file dropped into the bucket is news whoever owns it.
      if (actor?.role === 'admin' && action !== 'outside_upload') return;
      const now = clock();
      const changeId = Number(
        insertChange.run(now, actor?.id ?? null, actor?.email ?? null, action, imageId, summary)
          .lastInsertRowid,
      );
      if (config.smtpUrl) {
        for (const email of adminEmails.all() as string[])
          insertOutbox.run('email', email, changeId, now, now);
      }
      if (config.webhook) insertOutbox.run('webhook', config.webhook.url, changeId, now, now);
    },

    /** Polls the outbox until stopped; what is left at exit is sent after the next start. */
    startWorker(log: Logger, intervalMs = 5000): () => Promise<void> {
      const timer = setInterval(() => {
        deliver(log).catch((err) => log.error({ err }, 'notification worker failed'));
      }, intervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
        (await transport)?.close();
      };
    },

    /** Newest first; after is the id of the last change shown. */
    page(after: number | null): { changes: Change[]; nextCursor: string | null } {
      const rows = (
        after === null ? firstPage.all(CHANGES_PAGE_SIZE + 1) : nextPage.all(after, CHANGES_PAGE_SIZE + 1)
      ) as ChangeRow[];
      const changes = rows.slice(0, CHANGES_PAGE_SIZE).map(rowToChange);
      const last = changes.at(-1);
      return {
        changes,
        nextCursor: rows.length > CHANGES_PAGE_SIZE && last ? writeCursor(idCursor, last.id) : null,
      };
    },

    status(): { pending: number; lastError: string | null; email: boolean; webhook: boolean } {
      return {
        pending: pendingCount.get() as number,
        lastError: (lastErrorStmt.get() as { last_error: string } | undefined)?.last_error ?? null,
        email: Boolean(config.smtpUrl),
        webhook: Boolean(config.webhook),
      };
    },
  };
}

export type Notifications = ReturnType<typeof createNotifications>;
