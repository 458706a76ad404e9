import type { Insertable, Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import type { ShareLinksTable } from '../schema.js';

/**
 * A link with what its pages show beside it: its owner's flag, its image count and first title, and
 * for an album's link the album's name (its image count is then the album's).
 */
export type ShareLinkRow = Selectable<ShareLinksTable> & {
  owner_disabled: number;
  image_count: number;
  first_title: string | null;
  album_name: string | null;
};

/** How many rows the listings return at most. */
const BY_OWNER_LIMIT = 500;
const BY_IMAGE_LIMIT = 200;

/** The share_links table: links that show chosen images to anyone holding the token. */
export function shareLinksRepository(database: AppDb) {
  /** share_links as `l`, with the columns a ShareLinkRow adds. */
  function links() {
    return database.q
      .selectFrom('share_links as l')
      .selectAll('l')
      .select((eb) => [
        eb
          .selectFrom('users as u')
          .select('u.is_disabled')
          .whereRef('u.id', '=', 'l.owner_id')
          .as('owner_disabled'),
        // What the link shows: images in the trash are left out until restored.
        eb
          .selectFrom('share_link_images as s')
          .innerJoin('images as i', 'i.id', 's.image_id')
          .select(eb.fn.countAll<number>().as('n'))
          .whereRef('s.link_id', '=', 'l.id')
          .where('i.trashed_at', 'is', null)
          .as('image_count'),
        eb
          .selectFrom('share_link_images as s')
          .innerJoin('images as i', 'i.id', 's.image_id')
          .select('i.title')
          .whereRef('s.link_id', '=', 'l.id')
          .where('i.trashed_at', 'is', null)
          .orderBy('s.position')
          .limit(1)
          .as('first_title'),
        eb.selectFrom('albums as a').select('a.name').whereRef('a.id', '=', 'l.album_id').as('album_name'),
        eb
          .selectFrom('album_images as y')
          .select(eb.fn.countAll<number>().as('n'))
          .whereRef('y.album_id', '=', 'l.album_id')
          .as('album_image_count'),
      ]);
  }

  type Raw = Selectable<ShareLinksTable> & {
    owner_disabled: number | null;
    image_count: number | string | null;
    first_title: string | null;
    album_name: string | null;
    album_image_count: number | string | null;
  };
  // count(*) is a bigint on PostgreSQL; the owner is always there (a foreign key), so its flag is too.
  const toRow = ({ album_image_count, ...r }: Raw): ShareLinkRow => ({
    ...r,
    owner_disabled: Number(r.owner_disabled ?? 0),
    image_count: Number((r.album_id === null ? r.image_count : album_image_count) ?? 0),
  });

  return {
    async insert(row: Insertable<ShareLinksTable>): Promise<void> {
      await database.q.insertInto('share_links').values(row).execute();
    },

    async byId(id: string): Promise<ShareLinkRow | undefined> {
      const row = await links().where('l.id', '=', id).executeTakeFirst();
      return row && toRow(row);
    },

    async byTokenHash(tokenHash: string): Promise<ShareLinkRow | undefined> {
      const row = await links().where('l.token_hash', '=', tokenHash).executeTakeFirst();
      return row && toRow(row);
    },

    /** The owner's links, newest first. */
    async listByOwner(ownerId: string): Promise<ShareLinkRow[]> {
      const rows = await links()
        .where('l.owner_id', '=', ownerId)
        .orderBy('l.created_at', 'desc')
        .limit(BY_OWNER_LIMIT)
        .execute();
      return rows.map(toRow);
    },

    /** The links showing an album, newest first. */
    async listByAlbum(albumId: string): Promise<ShareLinkRow[]> {
      const rows = await links()
        .where('l.album_id', '=', albumId)
        .orderBy('l.created_at', 'desc')
        .limit(BY_IMAGE_LIMIT)
        .execute();
      return rows.map(toRow);
    },

    /** The links sharing an image, newest first. */
    async listByImage(imageId: string): Promise<ShareLinkRow[]> {
      const rows = await links()
        .innerJoin('share_link_images as x', 'x.link_id', 'l.id')
        .where('x.image_id', '=', imageId)
        .orderBy('l.created_at', 'desc')
        .limit(BY_IMAGE_LIMIT)
        .execute();
      return rows.map(toRow);
    },

    /** Revokes a link not revoked yet. */
    async revoke(id: string, at: number): Promise<void> {
      await database.q
        .updateTable('share_links')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
    },

    /** One more opening; a single statement, so parallel views all count. */
    async countView(id: string, at: number): Promise<void> {
      await database.q
        .updateTable('share_links')
        .set((eb) => ({ view_count: eb('view_count', '+', 1), last_viewed_at: at }))
        .where('id', '=', id)
        .execute();
    },
  };
}
