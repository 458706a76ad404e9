import { type Selectable, sql, type UpdateResult } from 'kysely';
import type { AppDb } from '../database.js';
import type { PendingUploadsTable } from '../schema.js';

/**
 * One row per signed POST policy, from presign until the policy has expired and the row is swept.
 * `key` is the staging key the policy names; `finalKey` the fresh key a completion copies it to
 * (set while it runs: the claim); `closedAt` says it is finished, `imageId` what it made.
 */
export interface PendingUpload {
  key: string;
  ownerId: string;
  originalName: string;
  replacesImageId: string | null;
  /** the policy's size ceiling, reserved against the owner's byte quota until the upload finishes */
  maxBytes: number;
  /** an upload page's own form (the plain form): the next visit of that page re-signs it */
  isForm: boolean;
  /** a page's plain form was signed for this key: other tabs may post to it (see uploads.ts) */
  isShared: boolean;
  createdAt: number;
  expiresAt: number;
  finalKey: string | null;
  claimedAt: number | null;
  closedAt: number | null;
  /** the ETag of the staging object the completion copied */
  etag: string | null;
  imageId: string | null;
  /** the bucket's multipart upload of an upload in parts, until its parts are joined */
  multipartId: string | null;
  /** an upload through a guest link: the link, and the guest's visit (a cookie's hash) */
  guestLinkId: string | null;
  guestVisit: string | null;
  guestName: string | null;
}

type PendingRow = Selectable<PendingUploadsTable>;

const toPending = (r: PendingRow): PendingUpload => ({
  key: r.key,
  ownerId: r.owner_id,
  originalName: r.original_name,
  replacesImageId: r.replaces_image_id,
  maxBytes: r.max_bytes,
  isForm: r.is_form === 1,
  isShared: r.is_shared === 1,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  finalKey: r.final_key,
  claimedAt: r.claimed_at,
  closedAt: r.closed_at,
  etag: r.etag,
  imageId: r.image_id,
  multipartId: r.multipart_id,
  guestLinkId: r.guest_link_id,
  guestVisit: r.guest_visit,
  guestName: r.guest_name,
});

/** Whether a conditional UPDATE changed exactly one row (the claim, or the close, was ours). */
const changedOne = (result: UpdateResult) => Number(result.numUpdatedRows) === 1;

/**
 * The pending_uploads table's SQL. Claims, releases and closes are single conditional UPDATEs, so
 * of two callers at once exactly one wins, on either dialect and in a transaction or not.
 */
export function pendingUploadsRepository(database: AppDb) {
  return {
    async get(key: string): Promise<PendingUpload | undefined> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .selectAll()
        .where('key', '=', key)
        .executeTakeFirst();
      return row ? toPending(row) : undefined;
    },

    async insert(
      row: Omit<
        PendingUpload,
        | 'finalKey'
        | 'claimedAt'
        | 'closedAt'
        | 'etag'
        | 'imageId'
        | 'isShared'
        | 'multipartId'
        | 'guestLinkId'
        | 'guestVisit'
        | 'guestName'
      > & { guest?: { linkId: string; visit: string; name: string | null } },
    ): Promise<void> {
      await database.q
        .insertInto('pending_uploads')
        .values({
          key: row.key,
          owner_id: row.ownerId,
          original_name: row.originalName,
          replaces_image_id: row.replacesImageId,
          max_bytes: row.maxBytes,
          is_form: row.isForm ? 1 : 0,
          // Taken over by upload.js later, the key stays one other tabs' forms may post to.
          is_shared: row.isForm ? 1 : 0,
          created_at: row.createdAt,
          expires_at: row.expiresAt,
          guest_link_id: row.guest?.linkId ?? null,
          guest_visit: row.guest?.visit ?? null,
          guest_name: row.guest?.name ?? null,
        })
        .execute();
    },

    /**
     * The newest unfinished, unclaimed, unexpired page form of this owner for this target, but
     * `exceptKey`: the owner's own, or with `guest` that guest's visit's of that link.
     */
    async openForm(
      ownerId: string,
      replacesImageId: string | null,
      now: number,
      exceptKey = '',
      guest?: { linkId: string; visit: string },
    ): Promise<PendingUpload | undefined> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .selectAll()
        .where('owner_id', '=', ownerId)
        .where('guest_link_id', guest ? '=' : 'is', guest?.linkId ?? null)
        .where('guest_visit', guest ? '=' : 'is', guest?.visit ?? null)
        .where('key', '<>', exceptKey)
        .where('is_form', '=', 1)
        .where('replaces_image_id', replacesImageId === null ? 'is' : '=', replacesImageId)
        .where('closed_at', 'is', null)
        .where('final_key', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('created_at', 'desc')
        .orderBy('key', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? toPending(row) : undefined;
    },

    /**
     * Another policy for an open, unclaimed row: the ceiling and the expiry are the larger of the
     * two, the name is kept unless a new one is given. False when the row is claimed or closed.
     */
    async resign(
      key: string,
      o: { maxBytes: number; originalName: string; expiresAt: number; isForm: boolean },
    ): Promise<boolean> {
      const result = await database.q
        .updateTable('pending_uploads')
        .set((eb) => ({
          // Two-argument max() is SQLite's alone; CASE says the same on both dialects.
          max_bytes: eb
            .case()
            .when('max_bytes', '>', o.maxBytes)
            .then(eb.ref('max_bytes'))
            .else(o.maxBytes)
            .end(),
          expires_at: eb
            .case()
            .when('expires_at', '>', o.expiresAt)
            .then(eb.ref('expires_at'))
            .else(o.expiresAt)
            .end(),
          is_form: o.isForm ? 1 : 0,
          ...(o.originalName === '' ? {} : { original_name: o.originalName }),
        }))
        .where('key', '=', key)
        .where('closed_at', 'is', null)
        .where('final_key', 'is', null)
        .executeTakeFirst();
      return changedOne(result);
    },

    /**
     * The ceilings of the owner's own rows besides `exceptKey`'s: of open rows, and of closed ones.
     * Guests' uploads are held by their link's bytes instead (guestReserved): a leaked link's
     * visitors cannot take the owner's room (completion still checks the quota for every file).
     */
    async reservedBytes(
      ownerId: string,
      exceptKey: string,
    ): Promise<{ unfinished: number; finished: number }> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .select((eb) => [
          eb.fn
            .coalesce(
              eb.fn.sum<number | string | null>(
                eb.case().when('closed_at', 'is', null).then(eb.ref('max_bytes')).end(),
              ),
              sql.lit(0),
            )
            .as('unfinished'),
          eb.fn
            .coalesce(
              eb.fn.sum<number | string | null>(
                eb.case().when('closed_at', 'is not', null).then(eb.ref('max_bytes')).end(),
              ),
              sql.lit(0),
            )
            .as('finished'),
        ])
        .where('owner_id', '=', ownerId)
        .where('guest_link_id', 'is', null)
        .where('key', '<>', exceptKey)
        .executeTakeFirstOrThrow();
      // sum() of bigint is a numeric string on PostgreSQL.
      return { unfinished: Number(row.unfinished), finished: Number(row.finished) };
    },

    /** The owner's own open rows besides `exceptKey`'s that would each make a new image (not replace one). */
    async unfinishedNewImages(ownerId: string, exceptKey: string): Promise<number> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('owner_id', '=', ownerId)
        .where('guest_link_id', 'is', null)
        .where('key', '<>', exceptKey)
        .where('closed_at', 'is', null)
        .where('replaces_image_id', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /**
     * Rows whose policy is still valid at `now` and could still write a file no image holds (open
     * ones, and those closed without an image: refused or given up), and when the first expires.
     */
    async live(ownerId: string, now: number): Promise<{ count: number; oldestExpiresAt: number | null }> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.min('expires_at').as('oldest')])
        .where('owner_id', '=', ownerId)
        // Guests' uploads are bounded by their link's own limits: a shared link cannot fill these.
        .where('guest_link_id', 'is', null)
        .where((eb) => eb.or([eb('closed_at', 'is', null), eb('image_id', 'is', null)]))
        .where('expires_at', '>', now)
        .executeTakeFirstOrThrow();
      return { count: Number(row.n), oldestExpiresAt: row.oldest === null ? null : Number(row.oldest) };
    },

    /**
     * The bytes a guest link's unfinished uploads besides `exceptKey`'s may still write: those whose
     * policy is still valid after `liveAfter` (an expired one writes nothing more).
     */
    async guestReserved(linkId: string, exceptKey: string, liveAfter: number): Promise<{ bytes: number }> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .select((eb) => [
          eb.fn.coalesce(eb.fn.sum<number | string | null>('max_bytes'), sql.lit(0)).as('bytes'),
        ])
        .where('guest_link_id', '=', linkId)
        .where('key', '<>', exceptKey)
        .where('closed_at', 'is', null)
        .where('expires_at', '>', liveAfter)
        .executeTakeFirstOrThrow();
      return { bytes: Number(row.bytes) };
    },

    /** Sets the final key of an open, unclaimed row; false when another caller got there first. */
    async claim(key: string, finalKey: string, now: number): Promise<boolean> {
      const result = await database.q
        .updateTable('pending_uploads')
        .set({ final_key: finalKey, claimed_at: now })
        .where('key', '=', key)
        .where('closed_at', 'is', null)
        .where('final_key', 'is', null)
        .executeTakeFirst();
      return changedOne(result);
    },

    /** Drops the claim, only if `finalKey` still holds it and the row is open. */
    async release(key: string, finalKey: string): Promise<boolean> {
      const result = await database.q
        .updateTable('pending_uploads')
        .set({ final_key: null, claimed_at: null })
        .where('key', '=', key)
        .where('final_key', '=', finalKey)
        .where('closed_at', 'is', null)
        .executeTakeFirst();
      return changedOne(result);
    },

    /** Closes the open row, only if its claim is `finalKey` (null: unclaimed). */
    async close(
      key: string,
      finalKey: string | null,
      imageId: string | null,
      now: number,
      etag: string | null,
    ): Promise<boolean> {
      const result = await database.q
        .updateTable('pending_uploads')
        .set({ closed_at: now, image_id: imageId, etag })
        .where('key', '=', key)
        .where('closed_at', 'is', null)
        .where('final_key', finalKey === null ? 'is' : '=', finalKey)
        .executeTakeFirst();
      return changedOne(result);
    },

    /** The owner's uploads in parts not joined (or not aborted for sure): their keys and upload ids. */
    async multipartOf(ownerId: string): Promise<{ key: string; multipartId: string }[]> {
      const rows = await database.q
        .selectFrom('pending_uploads')
        .select(['key', 'multipart_id'])
        .where('owner_id', '=', ownerId)
        .where('multipart_id', 'is not', null)
        .execute();
      return rows.map((r) => ({ key: r.key, multipartId: r.multipart_id ?? '' }));
    },

    /** Records the multipart upload of an open, unclaimed row (false: it was claimed or closed meanwhile). */
    async setMultipart(key: string, multipartId: string | null): Promise<boolean> {
      const result = await database.q
        .updateTable('pending_uploads')
        .set({ multipart_id: multipartId })
        .where('key', '=', key)
        .where('closed_at', 'is', null)
        .where('final_key', 'is', null)
        .executeTakeFirst();
      return changedOne(result);
    },

    /**
     * Moves an open upload in parts' expiry on to `expiresAt` (never back): each part's URL is
     * signed for no longer than the row lives, so a slow upload keeps its row while it sends.
     */
    async extend(key: string, expiresAt: number): Promise<boolean> {
      const result = await database.q
        .updateTable('pending_uploads')
        .set({ expires_at: expiresAt })
        .where('key', '=', key)
        .where('closed_at', 'is', null)
        .where('final_key', 'is', null)
        .where('multipart_id', 'is not', null)
        .where('expires_at', '<', expiresAt)
        .executeTakeFirst();
      return changedOne(result);
    },

    async remove(key: string): Promise<void> {
      await database.q.deleteFrom('pending_uploads').where('key', '=', key).execute();
    },

    /** Closes the open rows replacing this image; returns their staging keys. */
    async closeReplacementsOf(imageIds: readonly string[], now: number): Promise<string[]> {
      if (imageIds.length === 0) return [];
      const rows = await database.q
        .updateTable('pending_uploads')
        .set({ closed_at: now })
        .where('replaces_image_id', 'in', imageIds)
        .where('closed_at', 'is', null)
        .returning('key')
        .execute();
      return rows.map((r) => r.key);
    },

    /** Rows that expired by `expiredBy`, in (expires_at, key) order, from after `after`. */
    async due(
      expiredBy: number,
      limit: number,
      after: { expiresAt: number; key: string } | undefined,
    ): Promise<PendingUpload[]> {
      const rows = await database.q
        .selectFrom('pending_uploads')
        .selectAll()
        .where('expires_at', '<=', expiredBy)
        .where((eb) =>
          eb(eb.refTuple('expires_at', 'key'), '>', eb.tuple(after?.expiresAt ?? -1, after?.key ?? '')),
        )
        .orderBy('expires_at')
        .orderBy('key')
        .limit(limit)
        .execute();
      return rows.map(toPending);
    },

    /** Whether a row names this key, as its staging key or as its completion's final key. */
    async names(key: string): Promise<boolean> {
      const row = await database.q
        .selectFrom('pending_uploads')
        .select('key')
        .where((eb) => eb.or([eb('key', '=', key), eb('final_key', '=', key)]))
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}
