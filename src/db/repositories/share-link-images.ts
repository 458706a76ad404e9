import type { Selectable } from 'kysely';
import type { AppDb } from '../database.js';
import { type Database, IMAGE_COLUMNS_OF_I } from '../schema.js';

/** The share_link_images table: which images a link shows, in order. */
export function shareLinkImagesRepository(database: AppDb) {
  return {
    /** The link's images in the order given (position 0, 1, …). */
    async insert(linkId: string, imageIds: string[]): Promise<void> {
      if (imageIds.length === 0) return;
      await database.q
        .insertInto('share_link_images')
        .values(imageIds.map((imageId, position) => ({ link_id: linkId, image_id: imageId, position })))
        .execute();
    },

    /** The images rows a link shows, in its order. */
    async imagesOf(linkId: string): Promise<Selectable<Database['images']>[]> {
      return (
        database.q
          .selectFrom('share_link_images as s')
          .innerJoin('images as i', 'i.id', 's.image_id')
          .select(IMAGE_COLUMNS_OF_I)
          .where('s.link_id', '=', linkId)
          // In the trash: hidden from the link until restored (deleted for good, its row goes).
          .where('i.trashed_at', 'is', null)
          .orderBy('s.position')
          .execute()
      );
    },
  };
}
