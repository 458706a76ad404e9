import type { Insertable, Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { ChangesTable } from '../schema.js';

export type ChangeAction =
  | 'upload'
  | 'replace'
  | 'delete'
  | 'outside_upload'
  | 'outside_replace'
  | 'outside_delete'
  | 'guest_upload';

/** A change to the images that admins are told about; rows outlive the users and images they name. */
export interface Change {
  id: number;
  at: number;
  actorId: string | null;
  actorEmail: string | null;
  action: ChangeAction;
  imageId: string | null;
  summary: string;
}

const toChange = (r: Selectable<ChangesTable>): Change => ({
  id: r.id,
  at: r.at,
  actorId: r.actor_id,
  actorEmail: r.actor_email,
  action: r.action as ChangeAction,
  imageId: r.image_id,
  summary: r.summary,
});

export function changesRepository(database: AppDb) {
  return {
    /** Inserts the change; returns its id. */
    async insert(row: Insertable<ChangesTable> & { action: ChangeAction }): Promise<number> {
      const { id } = await database.q
        .insertInto('changes')
        .values(row)
        .returning('id')
        .executeTakeFirstOrThrow();
      return id;
    },

    async get(id: number): Promise<Change | undefined> {
      const row = await database.q.selectFrom('changes').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toChange(row);
    },

    /** Newest first, the `limit` changes before id `before` (from the newest when null). */
    async newestFirst(before: number | null, limit: number): Promise<Change[]> {
      const rows = await database.q
        .selectFrom('changes')
        .selectAll()
        .$if(before !== null, (qb) => qb.where('id', '<', before as number))
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toChange);
    },
  };
}
