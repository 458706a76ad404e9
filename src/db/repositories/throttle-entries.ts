import { type RawBuilder, sql } from 'kysely';
import type { AppDb } from '../database.js';

/** A row of throttle_entries as the throttles read it. */
export interface ThrottleEntry {
  /** failures counted (a fixed window) or still remembered (a backoff, fractional as they fade) */
  count: number;
  updatedAt: number;
  lastFailureAt: number;
  /** when the entry blocks nothing any more: a window's end, or when a backoff's failures have faded */
  expiresAt: number;
}

/**
 * How a scope counts: a fixed window (`count` failures until `expires_at`), or a backoff whose
 * remembered failures fade one per `forgetOneMs`.
 */
export type ThrottleCounting =
  | { kind: 'window'; windowMs: number }
  | { kind: 'backoff'; forgetOneMs: number };

/** Parameters typed in the SQL, so PostgreSQL never has to guess them (`$1 + $2` has no type). */
const bigint = (n: number) => sql<number>`cast(${n} as bigint)`;
const double = (n: number) => sql<number>`cast(${n} as double precision)`;
/** Two-argument max(x, 0), spelled alike on both dialects (SQLite has no greatest()). */
const atLeastZero = (x: RawBuilder<number>) => sql<number>`(case when ${x} > 0 then ${x} else 0 end)`;

/**
 * A backoff row's failures still remembered at `now`: the same arithmetic as the JavaScript
 * (src/services/rate-limit.ts), in the same order and in doubles on both dialects, so they agree to
 * the bit. Qualified by the table's name: inside ON CONFLICT DO UPDATE a bare column is ambiguous on
 * PostgreSQL.
 */
function fadedCount(now: number, forgetOneMs: number) {
  return atLeastZero(
    sql<number>`throttle_entries.count - cast(${bigint(now)} - throttle_entries.updated_at as double precision) / ${double(forgetOneMs)}`,
  );
}

/** When a backoff row holding `count` failures at `now` blocks nothing any more. */
function fadedBy(now: number, count: RawBuilder<number>, forgetOneMs: number) {
  return sql<number>`${bigint(now)} + cast(ceil((${count}) * ${double(forgetOneMs)}) as bigint)`;
}

/**
 * The throttle_entries table: failures counted per throttle (scope) and key. Every write that
 * counts is one statement, so concurrent instances never lose a count.
 */
export function throttleEntriesRepository(database: AppDb) {
  return {
    async get(scope: string, key: string): Promise<ThrottleEntry | undefined> {
      const row = await database.q
        .selectFrom('throttle_entries')
        .select(['count', 'updated_at', 'last_failure_at', 'expires_at'])
        .where('scope', '=', scope)
        .where('key', '=', key)
        .executeTakeFirst();
      return (
        row && {
          count: Number(row.count),
          updatedAt: Number(row.updated_at),
          lastFailureAt: Number(row.last_failure_at),
          expiresAt: Number(row.expires_at),
        }
      );
    },

    async size(scope: string): Promise<number> {
      const row = await database.q
        .selectFrom('throttle_entries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('scope', '=', scope)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** Deletes the row if it expired by `now`; a row another instance just renewed stays. */
    async deleteIfExpired(scope: string, key: string, now: number): Promise<void> {
      await database.q
        .deleteFrom('throttle_entries')
        .where('scope', '=', scope)
        .where('key', '=', key)
        .where('expires_at', '<=', now)
        .execute();
    },

    async deleteExpired(scope: string, now: number): Promise<void> {
      await database.q
        .deleteFrom('throttle_entries')
        .where('scope', '=', scope)
        .where('expires_at', '<=', now)
        .execute();
    },

    async delete(scope: string, key: string): Promise<void> {
      await database.q
        .deleteFrom('throttle_entries')
        .where('scope', '=', scope)
        .where('key', '=', key)
        .execute();
    },

    /** Deletes the `drop` rows of the scope holding the fewest failures at `now` (the oldest first among equals). */
    async evictFewest(scope: string, counting: ThrottleCounting, now: number, drop: number): Promise<void> {
      const held =
        counting.kind === 'window'
          ? sql<number>`throttle_entries.count`
          : fadedCount(now, counting.forgetOneMs);
      await database.q
        .deleteFrom('throttle_entries')
        .where('scope', '=', scope)
        .where('key', 'in', (eb) =>
          eb
            .selectFrom('throttle_entries')
            .select('key')
            .where('scope', '=', scope)
            .orderBy(held)
            .orderBy('updated_at')
            .limit(drop),
        )
        .execute();
    },

    /** Counts one failure; an expired window starts over, a backoff adds one to what is left of its count. */
    async recordFailure(scope: string, key: string, counting: ThrottleCounting, now: number): Promise<void> {
      const first = {
        scope,
        key,
        count: 1,
        updated_at: now,
        last_failure_at: now,
        expires_at: counting.kind === 'window' ? now + counting.windowMs : 0,
      };
      if (counting.kind === 'window') {
        const expired = sql<boolean>`throttle_entries.expires_at <= ${bigint(now)}`;
        await database.q
          .insertInto('throttle_entries')
          .values(first)
          .onConflict((oc) =>
            oc.columns(['scope', 'key']).doUpdateSet({
              count: sql<number>`case when ${expired} then 1 else throttle_entries.count + 1 end`,
              expires_at: sql<number>`case when ${expired} then excluded.expires_at else throttle_entries.expires_at end`,
              updated_at: now,
              last_failure_at: now,
            }),
          )
          .execute();
        return;
      }
      const { forgetOneMs } = counting;
      const after = sql<number>`${fadedCount(now, forgetOneMs)} + 1`;
      await database.q
        .insertInto('throttle_entries')
        .values({ ...first, expires_at: fadedBy(now, sql<number>`1`, forgetOneMs) })
        .onConflict((oc) =>
          oc.columns(['scope', 'key']).doUpdateSet({
            count: after,
            expires_at: fadedBy(now, after, forgetOneMs),
            updated_at: now,
            last_failure_at: now,
          }),
        )
        .execute();
    },

    /** Takes back one failure of a live row. */
    async forgive(scope: string, key: string, counting: ThrottleCounting, now: number): Promise<void> {
      const live = database.q
        .updateTable('throttle_entries')
        .where('scope', '=', scope)
        .where('key', '=', key)
        .where('expires_at', '>', now);
      if (counting.kind === 'window') {
        await live
          .set({ count: atLeastZero(sql<number>`throttle_entries.count - 1`), updated_at: now })
          .execute();
        return;
      }
      const left = atLeastZero(sql<number>`${fadedCount(now, counting.forgetOneMs)} - 1`);
      await live
        .set({ count: left, expires_at: fadedBy(now, left, counting.forgetOneMs), updated_at: now })
        .execute();
    },
  };
}
