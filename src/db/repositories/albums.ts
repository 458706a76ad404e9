import type { Insertable, Selectable } from 'kysely';
import { ACCEPTED_TYPES } from '../../image-types.js';
import type { AppDb } from '../database.js';
import type { AlbumsTable } from '../schema.js';

/** An album with what its pages show beside it: how many images it holds and its cover. */
export type AlbumRow = Selectable<AlbumsTable> & {
  image_count: number;
  /** the cover's thumbnail: the chosen cover while the album holds it, else its newest ready image */
  cover_thumb_key: string | null;
};

/** The types that have thumbnails: any other file (ACCEPT=any) is never a cover. */
const IMAGE_TYPES = [...ACCEPTED_TYPES.keys()];

/** How many albums a listing returns at most. */
const BY_OWNER_LIMIT = 500;

/** The albums table. */
export function albumsRepository(database: AppDb) {
  /** albums as `a`, with the columns an AlbumRow adds. */
  function albums() {
    return database.q
      .selectFrom('albums as a')
      .selectAll('a')
      .select((eb) => [
        eb
          .selectFrom('album_images as x')
          .innerJoin('images as i', 'i.id', 'x.image_id')
          .select(eb.fn.countAll<number>().as('n'))
          .whereRef('x.album_id', '=', 'a.id')
          .where('i.trashed_at', 'is', null)
          .as('image_count'),
        eb.fn
          .coalesce(
            eb
              .selectFrom('album_images as x')
              .innerJoin('images as i', 'i.id', 'x.image_id')
              .select('i.thumb_key')
              .whereRef('x.album_id', '=', 'a.id')
              .whereRef('i.id', '=', 'a.cover_image_id')
              .where('i.state', '=', 'ready')
              .where('i.trashed_at', 'is', null)
              .where('i.content_type', 'in', IMAGE_TYPES),
            eb
              .selectFrom('album_images as x')
              .innerJoin('images as i', 'i.id', 'x.image_id')
              .select('i.thumb_key')
              .whereRef('x.album_id', '=', 'a.id')
              .where('i.state', '=', 'ready')
              .where('i.trashed_at', 'is', null)
              // a file (ACCEPT=any) has no thumbnail to be a cover with
              .where('i.content_type', 'in', IMAGE_TYPES)
              .orderBy('i.created_at', 'desc')
              .orderBy('i.id', 'desc')
              .limit(1),
          )
          .as('cover_thumb_key'),
      ]);
  }

  // count(*) is a bigint on PostgreSQL.
  const toRow = <R extends { image_count: number | string | null }>(r: R) => ({
    ...r,
    image_count: Number(r.image_count ?? 0),
  });

  return {
    async insert(row: Insertable<AlbumsTable>): Promise<void> {
      await database.q.insertInto('albums').values(row).execute();
    },

    async byId(id: string): Promise<AlbumRow | undefined> {
      const row = await albums().where('a.id', '=', id).executeTakeFirst();
      return row && toRow(row);
    },

    /** The owner's albums, newest first. */
    async listByOwner(ownerId: string): Promise<AlbumRow[]> {
      const rows = await albums()
        .where('a.owner_id', '=', ownerId)
        .orderBy('a.created_at', 'desc')
        .orderBy('a.id', 'desc')
        .limit(BY_OWNER_LIMIT)
        .execute();
      return rows.map(toRow);
    },

    async rename(id: string, name: string, at: number): Promise<void> {
      await database.q.updateTable('albums').set({ name, updated_at: at }).where('id', '=', id).execute();
    },

    async setCover(id: string, imageId: string | null, at: number): Promise<void> {
      await database.q
        .updateTable('albums')
        .set({ cover_image_id: imageId, updated_at: at })
        .where('id', '=', id)
        .execute();
    },

    /** Its images stay; album_images rows go with it, and its share links show nothing. */
    async delete(id: string): Promise<void> {
      await database.q.deleteFrom('albums').where('id', '=', id).execute();
    },
  };
}
