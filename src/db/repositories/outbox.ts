import { type ExpressionBuilder, type Selectable, sql } from 'kysely';
import type { AppDb } from '../database.js';
import type { Database, OutboxTable } from '../schema.js';

/** What a sender needs of a claimed row. */
export type OutboxDelivery = Pick<
  Selectable<OutboxTable>,
  'id' | 'channel' | 'recipient' | 'change_id' | 'attempts'
>;

const DELIVERY = ['id', 'channel', 'recipient', 'change_id', 'attempts'] as const;

/** Rows nobody holds: never claimed, sent or failed since (the claim cleared), or a claim that lapsed. */
const unclaimed = (now: number) => (eb: ExpressionBuilder<Database, 'outbox'>) =>
  eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<=', now)]);

/**
 * Deliveries still to make, written in the transaction of the change they announce. Every instance
 * claims the rows it sends (claimed_by = its id, until the lease ends) and marks only rows it still
 * holds, so two instances never send one row. A claim runs in a transaction: on SQLite its BEGIN
 * IMMEDIATE serializes the workers; on PostgreSQL the inner SELECTs end in FOR UPDATE SKIP LOCKED
 * (a row another worker is claiming is skipped, not waited for), and a digest's claim holds a lock
 * named for its admin (see notifications.ts), so the interval check and the claim for one admin run
 * one instance at a time.
 */
export function outboxRepository(database: AppDb) {
  const isPostgres = database.kind === 'postgres';

  return {
    async insert(row: {
      channel: 'email' | 'webhook';
      recipient: string;
      changeId: number;
      now: number;
    }): Promise<void> {
      await database.q
        .insertInto('outbox')
        .values({
          channel: row.channel,
          recipient: row.recipient,
          change_id: row.changeId,
          created_at: row.now,
          next_attempt_at: row.now,
        })
        .execute();
    },

    /** An email delivery of the change to every enabled admin, oldest account first. */
    async insertEmailForAdmins(changeId: number, now: number): Promise<void> {
      await database.q
        .insertInto('outbox')
        .columns(['channel', 'recipient', 'change_id', 'created_at', 'next_attempt_at'])
        .expression((eb) =>
          eb
            .selectFrom('users')
            .select([
              sql<'email'>`'email'`.as('channel'),
              'email',
              sql<number>`cast(${changeId} as bigint)`.as('change_id'),
              sql<number>`cast(${now} as bigint)`.as('created_at'),
              sql<number>`cast(${now} as bigint)`.as('next_attempt_at'),
            ])
            .where('role', '=', 'admin')
            .where('is_disabled', '=', 0)
            .orderBy('created_at'),
        )
        .execute();
    },

    /** An email of the change to one more person (a guest link's owner), not an admin. */
    async insertEmailFor(recipient: string, changeId: number, now: number): Promise<void> {
      await database.q
        .insertInto('outbox')
        .values({
          channel: 'email',
          recipient,
          change_id: changeId,
          created_at: now,
          next_attempt_at: now,
        })
        .execute();
    },

    /** Claims the next due webhook nobody holds for `instanceId` until `until`. In a transaction. */
    async claimNextWebhook(
      instanceId: string,
      now: number,
      until: number,
    ): Promise<OutboxDelivery | undefined> {
      return database.q
        .updateTable('outbox')
        .set({ claimed_by: instanceId, claimed_until: until })
        .where('id', '=', (eb) =>
          eb
            .selectFrom('outbox')
            .select('id')
            .where('channel', '=', 'webhook')
            .where('sent_at', 'is', null)
            .where('next_attempt_at', '<=', now)
            .where(unclaimed(now))
            .orderBy('id')
            .limit(1)
            .$if(isPostgres, (qb) => qb.forUpdate().skipLocked()),
        )
        .returning(DELIVERY)
        .executeTakeFirst();
    },

    /** Admins with an email due that nobody holds. */
    async dueEmailRecipients(now: number): Promise<string[]> {
      const rows = await database.q
        .selectFrom('outbox')
        .select('recipient')
        .distinct()
        .where('channel', '=', 'email')
        .where('sent_at', 'is', null)
        .where('next_attempt_at', '<=', now)
        .where(unclaimed(now))
        .execute();
      return rows.map((r) => r.recipient);
    },

    /** When the last digest to `recipient` went, or null. */
    async lastEmailSentTo(recipient: string): Promise<number | null> {
      const row = await database.q
        .selectFrom('outbox')
        .select((eb) => eb.fn.max('sent_at').as('last'))
        .where('channel', '=', 'email')
        .where('recipient', '=', recipient)
        .where('sent_at', 'is not', null)
        .executeTakeFirst();
      return row?.last == null ? null : Number(row.last);
    },

    /** Whether another instance is sending `recipient` a digest now (its claim has not lapsed). */
    async isEmailClaimedFor(recipient: string, now: number): Promise<boolean> {
      const row = await database.q
        .selectFrom('outbox')
        .select('id')
        .where('channel', '=', 'email')
        .where('recipient', '=', recipient)
        .where('sent_at', 'is', null)
        .where('claimed_until', '>', now)
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Claims up to `limit` due unsent emails to `recipient` nobody holds. In the digest's locked transaction. */
    async claimEmailsFor(
      recipient: string,
      instanceId: string,
      now: number,
      until: number,
      limit: number,
    ): Promise<OutboxDelivery[]> {
      const rows = await database.q
        .updateTable('outbox')
        .set({ claimed_by: instanceId, claimed_until: until })
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('outbox')
            .select('id')
            .where('channel', '=', 'email')
            .where('recipient', '=', recipient)
            .where('sent_at', 'is', null)
            // Rows waiting out a failed send's backoff stay out, or with more than `limit` unsent
            // the same first rows would be retried at every round, ignoring their backoff.
            .where('next_attempt_at', '<=', now)
            .where(unclaimed(now))
            .orderBy('id')
            .limit(limit)
            .$if(isPostgres, (qb) => qb.forUpdate().skipLocked()),
        )
        .returning(DELIVERY)
        .execute();
      return rows.sort((a, b) => a.id - b.id);
    },

    /** Marks the rows sent, those `instanceId` still holds. */
    async markSent(ids: number[], instanceId: string, at: number): Promise<void> {
      if (ids.length === 0) return;
      await database.q
        .updateTable('outbox')
        .set({ sent_at: at, last_error: null, claimed_by: null, claimed_until: null })
        .where('id', 'in', ids)
        .where('claimed_by', '=', instanceId)
        .execute();
    },

    /** Counts a failed attempt on the row, if `instanceId` still holds it, and frees it for the retry. */
    async markFailed(id: number, instanceId: string, nextAttemptAt: number, error: string): Promise<void> {
      await database.q
        .updateTable('outbox')
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          next_attempt_at: nextAttemptAt,
          last_error: error,
          claimed_by: null,
          claimed_until: null,
        }))
        .where('id', '=', id)
        .where('claimed_by', '=', instanceId)
        .execute();
    },

    async pendingCount(): Promise<number> {
      const row = await database.q
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('sent_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** The error of the newest unsent row that failed, or null. */
    async lastError(): Promise<string | null> {
      const row = await database.q
        .selectFrom('outbox')
        .select('last_error')
        .where('sent_at', 'is', null)
        .where('last_error', 'is not', null)
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row?.last_error ?? null;
    },
  };
}
