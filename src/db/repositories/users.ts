import { type Insertable, type Selectable, sql } from 'kysely';
import type { AppDb } from '../database.js';
import type { UsersTable } from '../schema.js';

export type UserRow = Selectable<UsersTable>;
/** An account with what it stores: its images and their bytes. */
export type UserUsageRow = UserRow & { image_count: number; bytes_used: number };
type Role = UsersTable['role'];

/** The users table: accounts, their roles, flags and quotas. */
export function usersRepository(database: AppDb) {
  return {
    async byId(id: string): Promise<UserRow | undefined> {
      return database.q.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /**
     * The account of an address in any ASCII case, and no other spelling: lower() folds ASCII
     * letters only on both dialects (SQLite's own, and PostgreSQL's under the column's "C"
     * collation), and users_email_lower answers it.
     */
    async byEmail(email: string): Promise<UserRow | undefined> {
      return database.q
        .selectFrom('users')
        .selectAll()
        .where(sql<string>`lower(email)`, '=', asciiLowercase(email))
        .executeTakeFirst();
    },

    async exists(): Promise<boolean> {
      const row = await database.q.selectFrom('users').select('id').limit(1).executeTakeFirst();
      return row !== undefined;
    },

    async insert(row: Insertable<UsersTable>): Promise<void> {
      await database.q.insertInto('users').values(row).execute();
    },

    async setPasswordHash(id: string, passwordHash: string): Promise<void> {
      await database.q
        .updateTable('users')
        .set({ password_hash: passwordHash })
        .where('id', '=', id)
        .execute();
    },

    async setLastLogin(id: string, at: number): Promise<void> {
      await database.q.updateTable('users').set({ last_login_at: at }).where('id', '=', id).execute();
    },

    async setDisabled(id: string, isDisabled: boolean): Promise<void> {
      await database.q
        .updateTable('users')
        .set({ is_disabled: isDisabled ? 1 : 0 })
        .where('id', '=', id)
        .execute();
    },

    async setRole(id: string, role: Role): Promise<void> {
      await database.q.updateTable('users').set({ role }).where('id', '=', id).execute();
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

    /** Every account with its image count and bytes, oldest account first (the admin console). */
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
  };
}

/** A-Z to a-z and nothing else, as SQL's lower() does on both dialects here (JavaScript's folds Unicode). */
const asciiLowercase = (text: string) => text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
