import type { AppDb } from '../database.js';

/** The app_secrets table: keys the app makes once and keeps, by name. */
export function appSecretsRepository(database: AppDb) {
  return {
    /** Stores the value unless the name has one already (another instance may have stored it first). */
    async insertIfAbsent(name: string, value: Buffer, createdAt: number): Promise<void> {
      await database.q
        .insertInto('app_secrets')
        .values({ name, value, created_at: createdAt })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
    },

    async get(name: string): Promise<Buffer | undefined> {
      const row = await database.q
        .selectFrom('app_secrets')
        .select('value')
        .where('name', '=', name)
        .executeTakeFirst();
      return row?.value;
    },
  };
}
