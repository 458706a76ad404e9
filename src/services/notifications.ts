import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { NotifyConfig } from '../config.js';
import type { AppDb } from '../db/database.js';
import { type Change, type ChangeAction, changesRepository } from '../db/repositories/changes.js';
import { type OutboxDelivery, outboxRepository } from '../db/repositories/outbox.js';
import type { Clock } from './clock.js';
import { idCursor, writeCursor } from './cursors.js';
import type { User } from './users.js';

export type { Change, ChangeAction };

export const CHANGES_PAGE_SIZE = 50;
/** An admin gets at most one email per this interval; changes in between wait and go together. */
const EMAIL_INTERVAL_MS = 60 * 1000;
/** Webhooks one worker sends per round at most, so one round ends and emails get their turn. */
const WEBHOOKS_PER_ROUND = 50;
/** Changes one digest lists at most; the rest go in the next one. */
const DIGEST_MAX_ROWS = 200;
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
  outside_replace: 'replaced in the bucket outside the app (its copies are made again)',
  outside_delete: 'moved to the trash: its file was deleted from the bucket outside the app',
  guest_upload: 'received through a guest upload link',
};

export function describeChange(c: Pick<Change, 'actorEmail' | 'action' | 'summary'>): string {
  return `${c.actorEmail ?? 'Someone'} ${ACTION_WORDS[c.action]}: ${c.summary}`;
}

export interface NotificationDeps {
  database: AppDb;
  clock: Clock;
  config: NotifyConfig;
  appOrigin: string;
  /** whose name this process claims deliveries in (one id per process, shared with the job leases) */
  instanceId: string;
}

export function createNotifications({ database, clock, config, appOrigin, instanceId }: NotificationDeps) {
  const changes = changesRepository(database);
  // Claims: every instance claims the rows it sends (claimed_by = its id, until the lease ends) and
  // marks only rows it still holds, so two instances never send one row. Each claim is a
  // transaction of its own, committed before anything is sent (on PostgreSQL a transaction may run
  // twice): on SQLite the IMMEDIATE transaction serializes the workers; on PostgreSQL the inner
  // SELECTs end in FOR UPDATE SKIP LOCKED (a row another worker is claiming is skipped, not waited
  // for), and a digest's claim is a lockedTransaction named for its admin, so the interval check
  // and the claim for one admin run one instance at a time, as the IMMEDIATE transaction makes them
  // on SQLite. See src/db/repositories/outbox.ts.
  const outbox = outboxRepository(database);

  // nodemailer loads with the first email, so a server without SMTP never pays for it.
  let transport: Promise<import('nodemailer').Transporter> | null = null;
  const mailer = (url: string) => {
    transport ??= import('nodemailer').then((m) => m.default.createTransport({ ...SMTP_TIMEOUTS, url }));
    return transport;
  };
  let running: Promise<void> | null = null;

  const sent = (rows: OutboxDelivery[], at: number) =>
    outbox.markSent(
      rows.map((row) => row.id),
      instanceId,
      at,
    );

  /** Counts a failed attempt on each row and sets its retry, in one transaction. */
  async function fail(rows: OutboxDelivery[], err: unknown): Promise<void> {
    const message = (err instanceof Error ? err.message : String(err)).slice(0, 500);
    const now = clock();
    await database.transaction(async () => {
      for (const row of rows)
        await outbox.markFailed(row.id, instanceId, now + backoffMs(row.attempts + 1), message);
    });
  }

  /** The next due webhook nobody holds, now held by this instance: one at a time, so a lease covers its send. */
  function claimWebhook(now: number): Promise<OutboxDelivery | undefined> {
    return database.transaction(() => outbox.claimNextWebhook(instanceId, now, now + OUTBOX_LEASE_MS));
  }

  /**
   * Every unsent row for one admin, all held by this instance, or none: none when the last digest
   * went less than EMAIL_INTERVAL_MS ago or another instance is sending this admin one now.
   */
  function claimDigest(recipient: string, now: number): Promise<OutboxDelivery[]> {
    // Locked per admin: two instances never check and claim one admin's digest at once, and their
    // claims for different admins never abort one another.
    return database.lockedTransaction([`digest ${recipient}`], async () => {
      const last = await outbox.lastEmailSentTo(recipient);
      if (last !== null && now - last < EMAIL_INTERVAL_MS) return [];
      if (await outbox.isEmailClaimedFor(recipient, now)) return [];
      return outbox.claimEmailsFor(recipient, instanceId, now, now + OUTBOX_LEASE_MS, DIGEST_MAX_ROWS);
    });
  }

  async function sendWebhook(row: OutboxDelivery): Promise<void> {
    const c = await changes.get(row.change_id);
    if (!c || !config.webhook) {
      await sent([row], clock()); // nothing left to say, or the channel was turned off
      return;
    }
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
    await sent([row], clock());
  }

  /** One email per admin listing every change still waiting, at most once per EMAIL_INTERVAL_MS. */
  async function sendDigest(recipient: string, log?: Logger): Promise<void> {
    const rows = await claimDigest(recipient, clock());
    if (rows.length === 0) return;
    if (!config.smtpUrl) {
      await sent(rows, clock());
      return;
    }
    const listed: Change[] = [];
    for (const row of rows) {
      const change = await changes.get(row.change_id);
      if (change) listed.push(change);
    }
    const lines = listed.map((c) => {
      const link = c.imageId && c.action !== 'delete' ? `\n    ${appOrigin}/images/${c.imageId}` : '';
      return `- ${new Date(c.at).toISOString()} ${describeChange(c)}${link}`;
    });
    try {
      await (await mailer(config.smtpUrl)).sendMail({
        from: config.emailFrom,
        to: recipient,
        subject: `s3-gallery: ${listed.length} image change${listed.length === 1 ? '' : 's'}`,
        text: `${lines.join('\n')}\n\nAll changes: ${appOrigin}/admin/changes\n`,
      });
    } catch (err) {
      log?.warn({ err, changes: rows.length }, 'email digest failed; will retry');
      await fail(rows, err);
      return;
    }
    await sent(rows, clock());
  }

  async function deliverOnce(log?: Logger): Promise<void> {
    for (let i = 0; i < WEBHOOKS_PER_ROUND; i++) {
      const row = await claimWebhook(clock());
      if (!row) break;
      try {
        await sendWebhook(row);
      } catch (err) {
        log?.warn({ err, delivery: row.id }, 'webhook delivery failed; will retry');
        await fail([row], err);
      }
    }
    for (const recipient of await outbox.dueEmailRecipients(clock())) await sendDigest(recipient, log);
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
    async recordChange(
      actor: Pick<User, 'id' | 'email' | 'role'> | null,
      action: ChangeAction,
      imageId: string,
      summary: string,
      /** one more person to email of it, besides the admins (a guest link's owner who is not one) */
      alsoEmail?: string,
    ): Promise<void> {
      // Admins know what they did themselves; a file dropped into the bucket, or sent by a guest, is
      // news whoever owns it.
      if (actor?.role === 'admin' && !action.startsWith('outside_') && action !== 'guest_upload') return;
      // Joins the caller's transaction; alone, the change and its deliveries still commit together.
      await database.transaction(async () => {
        const now = clock();
        const changeId = await changes.insert({
          at: now,
          actor_id: actor?.id ?? null,
          actor_email: actor?.email ?? null,
          action,
          image_id: imageId,
          summary,
        });
        if (config.smtpUrl) await outbox.insertEmailForAdmins(changeId, now);
        if (config.smtpUrl && alsoEmail) await outbox.insertEmailFor(alsoEmail, changeId, now);
        if (config.webhook)
          await outbox.insert({ channel: 'webhook', recipient: config.webhook.url, changeId, now });
      });
    },

    /** Polls the outbox until stopped; what is left at exit is sent after the next start. */
    startWorker(log: Logger, intervalMs = 5000): () => Promise<void> {
      const timer = setInterval(() => {
        deliver(log).catch((err) => log.error({ err }, 'notification worker failed'));
      }, intervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running?.catch(() => {}); // a failed round was logged already
        (await transport)?.close();
      };
    },

    /** Newest first; after is the id of the last change shown. */
    async page(after: number | null): Promise<{ changes: Change[]; nextCursor: string | null }> {
      const rows = await changes.newestFirst(after, CHANGES_PAGE_SIZE + 1);
      const shown = rows.slice(0, CHANGES_PAGE_SIZE);
      const last = shown.at(-1);
      return {
        changes: shown,
        nextCursor: rows.length > CHANGES_PAGE_SIZE && last ? writeCursor(idCursor, last.id) : null,
      };
    },

    async status(): Promise<{ pending: number; lastError: string | null; email: boolean; webhook: boolean }> {
      return {
        pending: await outbox.pendingCount(),
        lastError: await outbox.lastError(),
        email: Boolean(config.smtpUrl),
        webhook: Boolean(config.webhook),
      };
    },
  };
}

export type Notifications = ReturnType<typeof createNotifications>;
