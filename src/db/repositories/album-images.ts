import type { AppDb } from '../database.js';
import { IMAGE_COLUMNS_OF_I } from '../schema.js';
import type { CardRow, ImagePosition, ImageRow } from './images.js';

/** The album_images table: which images an album holds. */
export function albumImagesRepository(database: AppDb) {
  /** The album's images a share link shows: ready, out of the trash (the `i` of the join). */
  const shown = (albumId: string) =>
    database.q
      .selectFrom('album_images as x')
      .innerJoin('images as i', 'i.id', 'x.image_id')
      .where('x.album_id', '=', albumId)
      .where('i.trashed_at', 'is', null)
      .where('i.state', '=', 'ready');

  return {
    /** Adds the images not in the album yet; returns how many were new. */
    async add(albumId: string, imageIds: readonly string[], at: number): Promise<number> {
      if (imageIds.length === 0) return 0;
      const result = await database.q
        .insertInto('album_images')
        .values(imageIds.map((imageId) => ({ album_id: albumId, image_id: imageId, added_at: at })))
        .onConflict((oc) => oc.columns(['album_id', 'image_id']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0);
    },

    /** Takes the images out of the album (they stay in the gallery); returns how many were in it. */
    async remove(albumId: string, imageIds: readonly string[]): Promise<number> {
      if (imageIds.length === 0) return 0;
      const result = await database.q
        .deleteFrom('album_images')
        .where('album_id', '=', albumId)
        .where('image_id', 'in', imageIds)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async has(albumId: string, imageId: string): Promise<boolean> {
      const row = await database.q
        .selectFrom('album_images')
        .select('image_id')
        .where('album_id', '=', albumId)
        .where('image_id', '=', imageId)
        .executeTakeFirst();
      return row !== undefined;
    },

    /**
     * One page of the album's cards in the gallery's order (newest upload first), keyset on the
     * images' (created_at, id) like the gallery.
     */
    async page(albumId: string, after: ImagePosition | null, limit: number): Promise<CardRow[]> {
      return database.q
        .selectFrom('album_images as x')
        .innerJoin('images as i', 'i.id', 'x.image_id')
        .select([
          'i.id',
          'i.title',
          'i.thumb_key',
          'i.display_key',
          'i.width',
          'i.height',
          'i.created_at',
          'i.state',
          'i.failure',
          'i.placeholder',
          'i.taken_sort',
          'i.content_type',
          'i.original_name',
          'i.bytes',
        ])
        .where('x.album_id', '=', albumId)
        .where('i.trashed_at', 'is', null)
        .$if(after !== null, (qb) =>
          qb.where((eb) => {
            // Upload order: the position's sort is the upload time.
            const { sort, id } = after as ImagePosition;
            return eb(eb.refTuple('i.created_at', 'i.id'), '<', eb.tuple(sort, id));
          }),
        )
        .orderBy('i.created_at', 'desc')
        .orderBy('i.id', 'desc')
        .limit(limit)
        .execute();
    },

    /**
     * The ids either side of `at` in the album's order (newest upload first; null at either end):
     * one step through the album's rows, as a page of one.
     */
    async neighbours(
      albumId: string,
      at: ImagePosition,
    ): Promise<{ newer: string | null; older: string | null }> {
      const beside = async (side: 'newer' | 'older') => {
        const direction = side === 'older' ? 'desc' : 'asc';
        const row = await database.q
          .selectFrom('album_images as x')
          .innerJoin('images as i', 'i.id', 'x.image_id')
          .select('i.id')
          .where('x.album_id', '=', albumId)
          .where('i.trashed_at', 'is', null)
          .where((eb) =>
            eb(eb.refTuple('i.created_at', 'i.id'), side === 'older' ? '<' : '>', eb.tuple(at.sort, at.id)),
          )
          .orderBy('i.created_at', direction)
          .orderBy('i.id', direction)
          .limit(1)
          .executeTakeFirst();
        return row?.id ?? null;
      };
      return { newer: await beside('newer'), older: await beside('older') };
    },

    /** The album's ready images, newest upload first, after `after`: a page of what its share link shows. */
    async readyImages(albumId: string, after: ImagePosition | null, limit: number): Promise<ImageRow[]> {
      return shown(albumId)
        .select(IMAGE_COLUMNS_OF_I)
        .$if(after !== null, (qb) =>
          qb.where((eb) => {
            const { sort, id } = after as ImagePosition;
            return eb(eb.refTuple('i.created_at', 'i.id'), '<', eb.tuple(sort, id));
          }),
        )
        .orderBy('i.created_at', 'desc')
        .orderBy('i.id', 'desc')
        .limit(limit)
        .execute();
    },

    /** One of the images an album's link shows, if it is one (in the album, ready, out of the trash). */
    async readyImage(albumId: string, imageId: string): Promise<ImageRow | undefined> {
      return shown(albumId).select(IMAGE_COLUMNS_OF_I).where('x.image_id', '=', imageId).executeTakeFirst();
    },

    /** How many images an album's link shows: its ready ones, out of the trash. */
    async readyCount(albumId: string): Promise<number> {
      const row = await shown(albumId)
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },
  };
}
