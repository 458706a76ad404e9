import { type Expression, type Insertable, type Selectable, sql, type Updateable } from 'kysely';
import type { AppDb } from '../database.js';
import { IMAGE_COLUMNS, type ImageState, type ImagesTable } from '../schema.js';

export interface Image {
  id: string;
  ownerId: string;
  title: string;
  originalName: string;
  originalKey: string;
  displayKey: string;
  thumbKey: string;
  contentType: string;
  bytes: number;
  width: number;
  height: number;
  takenAt: number | null;
  createdAt: number;
  updatedAt: number;
  /** visible to every signed-in user, read-only */
  isShared: boolean;
  /** its thumbnail and display copy exist only once 'ready' */
  state: ImageState;
  /** why processing gave up (state 'failed') */
  failure: string | null;
  /** ThumbHash of the thumbnail, base64 */
  placeholder: string | null;
  /** the camera's settings as stored (JSON), read with parseCameraDetails */
  exif: string | null;
  /** the original is in place (a new upload's is copied there just after its answer) */
  isStored: boolean;
  /** when it was moved to the trash; null while it is not there */
  trashedAt: number | null;
  /** sent through a guest upload link: the link, and the name the guest gave */
  guest: { linkId: string; name: string | null } | null;
}

/** An images row as the database returns it (the table's shape is src/db/schema.ts). */
export type ImageRow = Selectable<ImagesTable>;

export const rowToImage = (r: ImageRow): Image => ({
  id: r.id,
  ownerId: r.owner_id,
  title: r.title,
  originalName: r.original_name,
  originalKey: r.original_key,
  displayKey: r.display_key,
  thumbKey: r.thumb_key,
  contentType: r.content_type,
  bytes: r.bytes,
  width: r.width,
  height: r.height,
  takenAt: r.taken_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  isShared: r.is_shared === 1,
  state: r.state,
  failure: r.failure,
  placeholder: r.placeholder,
  exif: r.exif,
  isStored: r.staged_key === null,
  trashedAt: r.trashed_at,
  guest: r.guest_link_id === null ? null : { linkId: r.guest_link_id, name: r.guest_name },
});

/** Only what a card shows: the gallery query reads these and nothing else, for every page view. */
const CARD_COLUMNS = [
  'id',
  'title',
  'thumb_key',
  'display_key',
  'width',
  'height',
  'created_at',
  'taken_sort',
  'state',
  'failure',
  'placeholder',
  // a file that is not one of our image types (ACCEPT=any) is shown as a file card: type, name, size
  'content_type',
  'original_name',
  'bytes',
] as const;
export type CardRow = Pick<ImageRow, (typeof CARD_COLUMNS)[number]>;

/** A gallery's order: by upload time (created_at) or by date taken (taken_sort), newest first. */
export type ImageOrder = 'uploaded' | 'taken';

/** The position after which a gallery page starts: the sort key and id of the last card shown. */
export interface ImagePosition {
  /** created_at or taken_sort, as the order has it */
  sort: number;
  id: string;
}

/** Where a page starts and what it holds. */
export interface PageQuery {
  order: ImageOrder;
  /** the page starts after this card (null: from the newest) */
  after: ImagePosition | null;
  /** words every card's title or original name has (the last one as a prefix); none: every card */
  words?: readonly string[];
  limit: number;
}

/** A new file's columns, written by a completion (a new image's, or a replacement's). */
export type ImageFiles = Pick<
  Updateable<ImagesTable>,
  | 'original_name'
  | 'original_key'
  | 'display_key'
  | 'thumb_key'
  | 'content_type'
  | 'bytes'
  | 'width'
  | 'height'
  | 'taken_at'
  | 'updated_at'
  | 'state'
  | 'failure'
  | 'placeholder'
  | 'staged_key'
  | 'staged_etag'
  | 'share_copy_key'
  | 'original_etag'
>;

/** What a worker learnt from the file: the image becomes 'ready' with it. */
export type RenderedFields = Required<
  Pick<Updateable<ImagesTable>, 'width' | 'height' | 'taken_at' | 'placeholder' | 'exif'>
>;

/**
 * Below this many of the scope's images with a search's words, a page is cut from the matches (see
 * page()): walking the index costs more the fewer there are (with 1,500 matches in 100,000 images,
 * a page of 61 passes about 4,000 images).
 */
const FEW_MATCHES = 1500;

/**
 * On SQLite, the most matches (anyone's) a page is cut from: it reads every one's row to test its
 * scope (at 100,000 images, 20,000 matches of which no shared one: 42 ms), so past this many a
 * search walks the index whatever the scope holds (see planOf).
 */
const COUNTED_MATCHES = 5000;

/** The images table's SQL. */
export function imagesRepository(database: AppDb) {
  /**
   * One page of cards, newest first in the order asked: one keyset query on (created_at DESC, id
   * DESC) or (taken_sort DESC, id DESC), which images_owner_created / images_owner_taken (by owner)
   * or images_shared_created / images_shared_taken (shared ones) answer on both dialects.
   *
   * A search takes one of two plans. Words that match many images are met soon walking that index,
   * so it walks it and tests each row. Words that match few would walk most of it for nothing, so
   * the matches are read from the full-text index first and only they are sorted: for words found
   * in 1 image in 10 or in none, at 100,000 images, 35 ms against 1.5 ms on SQLite and 800 ms
   * against 5 ms on PostgreSQL. Which words are which is counted first (see planOf).
   */
  async function page(scope: { ownerId: string } | { isShared: true }, query: PageQuery): Promise<CardRow[]> {
    const { order, after, words = [], limit } = query;
    const sort = order === 'taken' ? 'taken_sort' : 'created_at';
    const isFew = words.length > 0 && (await planOf(scope, words)) === 'from matches';
    const scoped = inScope(scope, isFew)
      .select(CARD_COLUMNS)
      .$if(words.length > 0, (qb) => qb.where(matches(words, isFew ? 'from matches' : 'walking the index')))
      // A row-value comparison: both dialects turn it into a range on the index, so a deep page
      // costs what the first does (spelled as created_at < ? OR (= AND id < ?), both scanned every
      // newer row: 3.6 ms on SQLite and 8 ms on PostgreSQL 50,000 images deep, against 0.1-0.4 ms).
      .$if(after != null, (qb) =>
        qb.where((eb) => {
          const { sort: at, id } = after as ImagePosition;
          return eb(eb.refTuple(sort, 'id'), '<', eb.tuple(at, id));
        }),
      );
    if (!isFew) return scoped.orderBy(sort, 'desc').orderBy('id', 'desc').limit(limit).execute();
    // MATERIALIZED: the matches are found first, and the page is cut from them, not from the index.
    return database.q
      .with(
        (cte) => cte('found').materialized(),
        () => scoped,
      )
      .selectFrom('found')
      .selectAll()
      .orderBy(sort, 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }

  /**
   * The scope's images out of the trash: one owner's, or the shared ones. `fromMatches`: the rows
   * will be reached from the full-text matches. SQLite reaches them by their rowids; told that the
   * scope's column is indexed, it walks that index instead, testing every image of the scope (at
   * 100,000 images: 13 ms against 0.1 ms), so a unary + keeps the column out of its plan.
   */
  function inScope(scope: { ownerId: string } | { isShared: true }, fromMatches: boolean) {
    const hide = fromMatches && database.kind === 'sqlite';
    const column = (name: 'owner_id' | 'is_shared') => (hide ? sql`+${sql.ref(name)}` : sql.ref(name));
    return (
      database.q
        .selectFrom('images')
        .$if('ownerId' in scope, (qb) =>
          qb.where(column('owner_id'), '=', (scope as { ownerId: string }).ownerId),
        )
        // A literal, not a parameter: only `is_shared = 1` itself matches the partial index.
        .$if(!('ownerId' in scope), (qb) => qb.where(column('is_shared'), '=', sql.lit(1)))
        .where('trashed_at', 'is', null)
    );
  }

  /**
   * How page() reaches a search's images: from the matches when fewer than FEW_MATCHES of the
   * scope's images have the words, else walking the index. (Counting everyone's matches instead,
   * as before, walked an owner's whole index for a word that 3,000 of another person's images held
   * and none of theirs: 145 ms on PostgreSQL at 100,000 images.)
   *
   * PostgreSQL counts the scope's at once: it can AND the full-text index with the scope's, so
   * other people's matches cost it little, in the count and in the page. SQLite reads each match's
   * row to test its scope, so it first counts everyone's in the full-text table alone: past
   * COUNTED_MATCHES it walks the index; below FEW_MATCHES the scope cannot have more.
   */
  async function planOf(
    scope: { ownerId: string } | { isShared: true },
    words: readonly string[],
  ): Promise<'from matches' | 'walking the index'> {
    const scoped = inScope(scope, true)
      .select(sql.lit(1).as('one'))
      .where(matches(words, 'from matches'))
      .limit(FEW_MATCHES);
    const fewOfScope = async () => (await countOf(scoped)) < FEW_MATCHES;
    if (database.kind === 'postgres') return (await fewOfScope()) ? 'from matches' : 'walking the index';
    const all = await countOf(
      sql`(SELECT 1 FROM images_search WHERE images_search MATCH ${ftsMatch(words)} LIMIT ${COUNTED_MATCHES})`,
    );
    if (all >= COUNTED_MATCHES) return 'walking the index';
    return all < FEW_MATCHES || (await fewOfScope()) ? 'from matches' : 'walking the index';
  }

  /** How many rows a subquery gives (a query builder, or raw SQL in parentheses), up to its LIMIT. */
  async function countOf(rows: Expression<unknown>): Promise<number> {
    const { rows: counted } = await sql<{
      n: number | string;
    }>`SELECT count(*) AS n FROM ${rows} AS m`.execute(database.q);
    return Number(counted[0]?.n ?? 0);
  }

  /**
   * Rows whose title or original name has every word, the last as a prefix of one ("holiday bea"
   * finds "Holiday beach.jpg"). The words are letters and digits only (see searchWords), and go in
   * as parameters, quoted for the full-text syntax, so nothing typed is read as an operator.
   */
  function matches(words: readonly string[], plan: 'from matches' | 'walking the index') {
    // Every word a prefix (but a letter alone): "bea" finds beach.
    if (database.kind === 'postgres') {
      const tsquery = words.map((w) => (isPrefix(w) ? `'${w}':*` : `'${w}'`)).join(' & ');
      // search_words: the title's and name's words, stored (migration 22) and indexed.
      return sql<boolean>`search_words @@ to_tsquery('simple', ${tsquery})`;
    }
    // Walking the order index, each row is tested against the matches. Shown a bare rowid, SQLite
    // would rather read every match by its rowid and sort them all (at 100,000 images, a shared
    // search 50,000 deep that no shared image meets: 16 ms against 2.5 ms); a unary + hides it.
    const rowid = plan === 'walking the index' ? sql`+images.rowid` : sql`images.rowid`;
    return sql<boolean>`${rowid} IN (SELECT rowid FROM images_search WHERE images_search MATCH ${ftsMatch(words)})`;
  }

  /**
   * The id of the image beside `at` in a gallery's order (newest first, by upload or by date taken):
   * 'newer' is the one before it, 'older' the one after. One keyset step on the same index as the page query, read forwards
   * for older and backwards for newer, so it costs one index probe however deep the image is.
   */
  async function beside(
    scope: { ownerId: string } | { isShared: true },
    at: ImagePosition,
    side: 'newer' | 'older',
    order: ImageOrder,
  ): Promise<string | null> {
    const direction = side === 'older' ? 'desc' : 'asc';
    const sort = order === 'taken' ? 'taken_sort' : 'created_at';
    const row = await database.q
      .selectFrom('images')
      .select('id')
      .$if('ownerId' in scope, (qb) => qb.where('owner_id', '=', (scope as { ownerId: string }).ownerId))
      .$if(!('ownerId' in scope), (qb) => qb.where('is_shared', '=', sql.lit(1)))
      .where('trashed_at', 'is', null)
      .where((eb) => eb(eb.refTuple(sort, 'id'), side === 'older' ? '<' : '>', eb.tuple(at.sort, at.id)))
      .orderBy(sort, direction)
      .orderBy('id', direction)
      .limit(1)
      .executeTakeFirst();
    return row?.id ?? null;
  }

  return {
    /**
     * Images whose original is in place and not in the trash, unchanged since `before`, by id from
     * after `afterId`: what reconcile checks against the bucket's listing.
     */
    async storedOriginals(before: number, afterId: string, limit: number) {
      return database.q
        .selectFrom('images')
        .select(['id', 'original_key'])
        .where('staged_key', 'is', null)
        .where('trashed_at', 'is', null)
        .where('updated_at', '<', before)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute();
    },

    /** The image whose original is this key, in the trash or not. */
    async getByOriginalKey(key: string): Promise<ImageRow | undefined> {
      return database.q
        .selectFrom('images')
        .select(IMAGE_COLUMNS)
        .where('original_key', '=', key)
        .executeTakeFirst();
    },

    async get(id: string): Promise<ImageRow | undefined> {
      return database.q.selectFrom('images').select(IMAGE_COLUMNS).where('id', '=', id).executeTakeFirst();
    },

    /** The rows of these ids that exist, in no particular order. */
    async getMany(ids: readonly string[]): Promise<ImageRow[]> {
      if (ids.length === 0) return [];
      return database.q.selectFrom('images').select(IMAGE_COLUMNS).where('id', 'in', ids).execute();
    },

    /** Every storage key of an owner's images (an account being deleted). */
    async keysOfOwner(ownerId: string): Promise<string[]> {
      const rows = await database.q
        .selectFrom('images')
        .select(['original_key', 'display_key', 'thumb_key', 'share_copy_key'])
        .where('owner_id', '=', ownerId)
        .execute();
      return rows.flatMap((r) => [
        r.original_key,
        r.display_key,
        r.thumb_key,
        ...(r.share_copy_key ? [r.share_copy_key] : []),
      ]);
    },

    async insert(row: Insertable<ImagesTable>): Promise<void> {
      await database.q.insertInto('images').values(row).execute();
    },

    /** Points the image at a new file (a replacement); its id, owner, title and sharing stay. */
    async replaceFiles(id: string, files: ImageFiles): Promise<void> {
      await database.q.updateTable('images').set(files).where('id', '=', id).execute();
    },

    /**
     * Marks the image ready with what its renditions told, if it is still the file and renditions
     * the worker made (not replaced or deleted meanwhile); false otherwise.
     */
    async markReady(
      id: string,
      made: { originalKey: string; thumbKey: string; displayKey: string },
      fields: RenderedFields,
    ): Promise<boolean> {
      const row = await database.q
        .updateTable('images')
        .set({ ...fields, state: 'ready', failure: null })
        .where('id', '=', id)
        .where('original_key', '=', made.originalKey)
        .where('thumb_key', '=', made.thumbKey)
        .where('display_key', '=', made.displayKey)
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Marks the image failed, with the reason, if its file is still `originalKey`; false otherwise. */
    async markFailed(id: string, originalKey: string, failure: string): Promise<boolean> {
      const row = await database.q
        .updateTable('images')
        .set({ state: 'failed', failure })
        .where('id', '=', id)
        .where('original_key', '=', originalKey)
        .where('state', '=', 'processing')
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Whether an image's original is still to be copied from this staging object. */
    async isStaged(key: string): Promise<boolean> {
      const row = await database.q
        .selectFrom('images')
        .select('id')
        .where('staged_key', '=', key)
        .executeTakeFirst();
      return row !== undefined;
    },

    /** The original is in place (with this ETag, when known): the image stops naming its staging object. */
    async unstage(id: string, stagedKey: string, originalEtag: string | null = null): Promise<void> {
      await database.q
        .updateTable('images')
        .set({
          staged_key: null,
          staged_etag: null,
          ...(originalEtag ? { original_etag: originalEtag } : {}),
        })
        .where('id', '=', id)
        .where('staged_key', '=', stagedKey)
        .execute();
    },

    /** Back to processing (a retry), if it failed; false otherwise. */
    async markProcessing(id: string): Promise<boolean> {
      const row = await database.q
        .updateTable('images')
        .set({ state: 'processing', failure: null })
        .where('id', '=', id)
        .where('state', '=', 'failed')
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** How many images are processing and how many failed (images_unready answers it). */
    async unreadyCounts(): Promise<{ processing: number; failed: number }> {
      const rows = await database.q
        .selectFrom('images')
        .select((eb) => ['state', eb.fn.countAll<number | string>().as('n')])
        .where('state', '<>', sql.lit('ready'))
        .groupBy('state')
        .execute();
      const of = (state: ImageState) => Number(rows.find((r) => r.state === state)?.n ?? 0);
      return { processing: of('processing'), failed: of('failed') };
    },

    /** The most recently failed images, everyone's (the admin console). */
    async listFailed(limit: number): Promise<ImageRow[]> {
      return database.q
        .selectFrom('images')
        .select(IMAGE_COLUMNS)
        .where('state', '=', sql.lit('failed'))
        .orderBy('updated_at', 'desc')
        .limit(limit)
        .execute();
    },

    async rename(id: string, title: string, updatedAt: number): Promise<void> {
      await database.q
        .updateTable('images')
        .set({ title, updated_at: updatedAt })
        .where('id', '=', id)
        .execute();
    },

    async setShared(id: string, isShared: boolean): Promise<void> {
      await database.q
        .updateTable('images')
        .set({ is_shared: isShared ? 1 : 0 })
        .where('id', '=', id)
        .execute();
    },

    /** Deletes the rows; returns the ids of those this statement deleted (not ones gone before). */
    async deleteByIds(ids: readonly string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await database.q.deleteFrom('images').where('id', 'in', ids).returning('id').execute();
      return new Set(rows.map((r) => r.id));
    },

    /** A page of the owner's cards, newest first in the order asked. */
    listPage: (ownerId: string, query: PageQuery) => page({ ownerId }, query),

    /** A page of the cards shown to every signed-in user, newest first in the order asked. */
    listShared: (query: PageQuery) => page({ isShared: true }, query),

    /** Which way a search of these words in this scope goes (see planOf): the tests' view of it. */
    searchPlan: planOf,

    /** The ids either side of `at` in the owner's gallery, in the order asked (null at either end). */
    neighboursInGallery: async (ownerId: string, at: ImagePosition, order: ImageOrder) => ({
      newer: await beside({ ownerId }, at, 'newer', order),
      older: await beside({ ownerId }, at, 'older', order),
    }),

    /** The ids either side of `at` among the shared images, in the order asked (null at either end). */
    neighboursInShared: async (at: ImagePosition, order: ImageOrder) => ({
      newer: await beside({ isShared: true }, at, 'newer', order),
      older: await beside({ isShared: true }, at, 'older', order),
    }),

    /** How many images the owner has (those in the trash too, and how many those are), and their bytes. */
    async usage(ownerId: string): Promise<{ images: number; bytes: number; trashed: number }> {
      const row = await database.q
        .selectFrom('images')
        .select((eb) => [
          eb.fn.countAll<number | string>().as('images'),
          eb.fn.coalesce(eb.fn.sum<number | string | null>('bytes'), sql.lit(0)).as('bytes'),
          eb.fn.count<number | string>('trashed_at').as('trashed'),
        ])
        .where('owner_id', '=', ownerId)
        .executeTakeFirstOrThrow();
      // count() and sum() of bigint come back as strings on PostgreSQL.
      return { images: Number(row.images), bytes: Number(row.bytes), trashed: Number(row.trashed) };
    },

    /**
     * Records the share copy made of this original, unless the image has one already or its file
     * was replaced meanwhile; whether it was recorded (if not, the copy is no one's).
     */
    async setShareCopy(id: string, originalKey: string, key: string): Promise<boolean> {
      const row = await database.q
        .updateTable('images')
        .set({ share_copy_key: key })
        .where('id', '=', id)
        .where('original_key', '=', originalKey)
        .where('share_copy_key', 'is', null)
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Moves the images not in the trash yet there, as of `at`; returns the ids moved. */
    async moveToTrash(ids: readonly string[], at: number): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await database.q
        .updateTable('images')
        .set({ trashed_at: at })
        .where('id', 'in', ids)
        .where('trashed_at', 'is', null)
        .returning('id')
        .execute();
      return new Set(rows.map((r) => r.id));
    },

    /** Takes the images in the trash out of it; returns the ids restored. */
    async restoreFromTrash(ids: readonly string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await database.q
        .updateTable('images')
        .set({ trashed_at: null })
        .where('id', 'in', ids)
        .where('trashed_at', 'is not', null)
        .returning('id')
        .execute();
      return new Set(rows.map((r) => r.id));
    },

    /**
     * What a guest link brought (out of the trash), newest first, or only one visit's of it
     * (images_guest).
     */
    async ofGuestLink(linkId: string, visit: string | null, limit: number): Promise<ImageRow[]> {
      const q = database.q
        .selectFrom('images')
        .select(IMAGE_COLUMNS)
        .where('guest_link_id', '=', linkId)
        .where('trashed_at', 'is', null);
      return (visit === null ? q : q.where('guest_visit', '=', visit))
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
    },

    /** The owner's images in the trash, the latest moved there first, at most `limit` (images_trashed). */
    async trashOf(ownerId: string, limit: number): Promise<ImageRow[]> {
      return database.q
        .selectFrom('images')
        .select(IMAGE_COLUMNS)
        .where('owner_id', '=', ownerId)
        .where('trashed_at', 'is not', null)
        .orderBy('trashed_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
    },

    /** The ids of the owner's images moved to the trash at exactly `at` (one press of Delete). */
    async trashedAt(ownerId: string, at: number): Promise<string[]> {
      const rows = await database.q
        .selectFrom('images')
        .select('id')
        .where('owner_id', '=', ownerId)
        .where('trashed_at', '=', at)
        .execute();
      return rows.map((r) => r.id);
    },

    /** Images in the trash since before `before`, oldest first, at most `limit` (images_trash_due). */
    async trashedBefore(before: number, limit: number): Promise<ImageRow[]> {
      return database.q
        .selectFrom('images')
        .select(IMAGE_COLUMNS)
        .where('trashed_at', 'is not', null)
        .where('trashed_at', '<', before)
        .orderBy('trashed_at')
        .orderBy('id')
        .limit(limit)
        .execute();
    },

    /** Whether an image's original, display or thumbnail is this key, or its staging object still to copy. */
    async usesKey(key: string): Promise<boolean> {
      const row = await database.q
        .selectFrom('images')
        .select('id')
        .where((eb) =>
          eb.or([
            eb('original_key', '=', key),
            eb('display_key', '=', key),
            eb('thumb_key', '=', key),
            eb('staged_key', '=', key),
            eb('share_copy_key', '=', key),
          ]),
        )
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}

/**
 * A word of one letter is a whole word, not a prefix: as a prefix it would match most words, a
 * search nobody means that costs a scan of the whole index (115 ms on PostgreSQL at 100,000
 * images). "s" finds "Plan S"; "su" finds "Sunset". A digit stays a prefix ("img 6" finds
 * IMG_6123): numbers spread over ten.
 */
const isPrefix = (word: string) => !/^\p{L}\p{M}*$/u.test(word);

/** An FTS5 query of every word, each quoted ("bea"* AND "sun"*): no word is read as syntax. */
const ftsMatch = (words: readonly string[]) =>
  words.map((w) => (isPrefix(w) ? `"${w}"*` : `"${w}"`)).join(' AND ');
