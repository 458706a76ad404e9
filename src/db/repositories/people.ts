import type { Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { Database } from '../schema.js';

/** An account with what it stores: its images and their bytes. */
export type UserUsageRow = Selectable<Database['users']> & { image_count: number; bytes_used: number };

/**
 * The users table as the administrators' pages change it: accounts with their usage, the
 * last-admin count, quotas, deletion. TODO(issue 14): these are users-table queries, kept apart
 * from src/db/repositories/users.ts only while that one is converted; they belong there.
 */
export function peopleRepository(database: AppDb) {
  return {
    /** Every account with its image count and bytes, oldest account first. */
    async listWithUsage(): Promise<UserUsageRow[]> {
      const rows = await database.q
        .selectFrom('users as u')
        .leftJoin('images as i', 'i.owner_id', 'u.id')
        .selectAll('u')
        .select((eb) => [
          eb.fn.count<number>('i.id').as('image_count'),
          eb.fn.coalesce(eb.fn.sum<number>('i.bytes'), eb.lit(0)).as('bytes_used'),
        ])
        .groupBy('u.id')
        .orderBy('u.created_at')
        .orderBy('u.id')
        .execute();
      // count() is a bigint and sum() a numeric on PostgreSQL: both may arrive as strings.
      return rows.map((r) => ({
        ...r,
        image_count: Number(r.image_count),
        bytes_used: Number(r.bytes_used),
      }));
    },

    /** Enabled admins other than `exceptId`. */
    async countOtherActiveAdmins(exceptId: string): Promise<number> {
      const row = await database.q
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('role', '=', 'admin')
        .where('is_disabled', '=', 0)
        .where('id', '<>', exceptId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async setQuota(id: string, quota: { bytes: number | null; images: number | null }): Promise<void> {
      await database.q
        .updateTable('users')
        .set({ quota_bytes: quota.bytes, quota_images: quota.images })
        .where('id', '=', id)
        .execute();
    },

    /** Deletes the account; its sessions, images, links and uploads go with it (foreign keys). */
    async delete(id: string): Promise<void> {
      await database.q.deleteFrom('users').where('id', '=', id).execute();
    },

    /**
     * Every storage key of the account's images. TODO(issue 14): an images-table query; it belongs
     * in src/db/repositories/images.ts once that exists.
     */
    async imageKeysOf(ownerId: string): Promise<string[]> {
      const rows = await database.q
        .selectFrom('images')
        .select(['original_key', 'display_key', 'thumb_key'])
        .where('owner_id', '=', ownerId)
        .execute();
      return rows.flatMap((r) => [r.original_key, r.display_key, r.thumb_key]);
    },
  };
}
