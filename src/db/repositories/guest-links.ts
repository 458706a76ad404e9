import type { Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { GuestLinksTable } from '../schema.js';

export type GuestLinkRow = Selectable<GuestLinksTable> & { owner_email: string; album_name: string | null };

/**
 * The guest_links table's SQL. What a link accepted is counted by one conditional UPDATE, so of
 * completions at once only those within its limits count, on either dialect.
 */
export function guestLinksRepository(database: AppDb) {
  const withOwner = () =>
    database.q
      .selectFrom('guest_links')
      .innerJoin('users', 'users.id', 'guest_links.owner_id')
      .leftJoin('albums', 'albums.id', 'guest_links.album_id')
      .selectAll('guest_links')
      .select(['users.email as owner_email', 'albums.name as album_name']);

  return {
    async insert(row: Omit<Selectable<GuestLinksTable>, 'files_accepted' | 'bytes_accepted'>): Promise<void> {
      await database.q.insertInto('guest_links').values(row).execute();
    },

    byId: (id: string): Promise<GuestLinkRow | undefined> =>
      withOwner().where('guest_links.id', '=', id).executeTakeFirst(),

    byTokenHash: (hash: string): Promise<GuestLinkRow | undefined> =>
      withOwner().where('guest_links.token_hash', '=', hash).executeTakeFirst(),

    /** An owner's links, newest first; everyone's (for admins) when `ownerId` is null. */
    list: (ownerId: string | null, limit: number): Promise<GuestLinkRow[]> => {
      const q = withOwner()
        .orderBy('guest_links.created_at', 'desc')
        .orderBy('guest_links.id', 'desc')
        .limit(limit);
      return (ownerId === null ? q : q.where('guest_links.owner_id', '=', ownerId)).execute();
    },

    async countLive(ownerId: string, now: number): Promise<number> {
      const row = await database.q
        .selectFrom('guest_links')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('owner_id', '=', ownerId)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** Clears a link's revoked_at (turns it on again); false when it was not turned off. */
    async reopen(id: string): Promise<boolean> {
      const result = await database.q
        .updateTable('guest_links')
        .set({ revoked_at: null })
        .where('id', '=', id)
        .where('revoked_at', 'is not', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async revoke(id: string, now: number): Promise<boolean> {
      const result = await database.q
        .updateTable('guest_links')
        .set({ revoked_at: now })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /**
     * Counts one accepted file of `bytes`, only while the link is in force and within its limits;
     * false when it is not (the file is then refused).
     */
    async accept(id: string, bytes: number, now: number): Promise<boolean> {
      const result = await database.q
        .updateTable('guest_links')
        .set((eb) => ({
          files_accepted: eb('files_accepted', '+', 1),
          bytes_accepted: eb('bytes_accepted', '+', bytes),
          last_used_at: now,
        }))
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .where((eb) => eb('files_accepted', '<', eb.ref('max_files')))
        .where((eb) => eb(eb('bytes_accepted', '+', bytes), '<=', eb.ref('max_bytes')))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}
