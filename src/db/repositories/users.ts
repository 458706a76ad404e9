import type { Insertable, Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { UsersTable } from '../schema.js';

export type UserRow = Selectable<UsersTable>;
type Role = UsersTable['role'];

/** The users table: accounts, their roles, flags and quotas. */
export function usersRepository(database: AppDb) {
  return {
    async byId(id: string): Promise<UserRow | undefined> {
      return database.q.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** Case-insensitive on both dialects (the column's collation). */
    async byEmail(email: string): Promise<UserRow | undefined> {
      return database.q.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
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
  };
}
