import type { Selectable } from 'kysely';
import type { Db } from '../db/connection.js';
import type { Database } from '../db/schema.js';

/** How long a signed POST policy may be used. */
export const POLICY_TTL_SECONDS = 15 * 60;
/**
 * The bucket's clock may run ahead of or behind ours: a policy counts as live this long after its
 * expiry, so nothing it could still write escapes the sweep.
 */
export const POLICY_CLOCK_MARGIN_MS = 5 * 60 * 1000;

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
  createdAt: number;
  expiresAt: number;
  finalKey: string | null;
  claimedAt: number | null;
  closedAt: number | null;
  /** the ETag of the staging object the completion copied */
  etag: string | null;
  imageId: string | null;
}

type PendingRow = Selectable<Database['pending_uploads']>;

const toPending = (r: PendingRow): PendingUpload => ({
  key: r.key,
  ownerId: r.owner_id,
  originalName: r.original_name,
  replacesImageId: r.replaces_image_id,
  maxBytes: r.max_bytes,
  isForm: r.is_form === 1,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  finalKey: r.final_key,
  claimedAt: r.claimed_at,
  closedAt: r.closed_at,
  etag: r.etag,
  imageId: r.image_id,
});

/** The pending_uploads table's SQL, in one place. */
export function createPendingUploads({ db }: { db: Db }) {
  const byKey = db.prepare('SELECT * FROM pending_uploads WHERE key = ?');
  const insert = db.prepare(
    `INSERT INTO pending_uploads (key, owner_id, original_name, replaces_image_id, max_bytes, is_form, created_at,
       expires_at)
     VALUES (@key, @ownerId, @originalName, @replacesImageId, @maxBytes, @isForm, @createdAt, @expiresAt)`,
  );
  const resign = db.prepare(
    `UPDATE pending_uploads SET max_bytes = max(max_bytes, @maxBytes),
       original_name = CASE WHEN @originalName = '' THEN original_name ELSE @originalName END,
       expires_at = max(expires_at, @expiresAt), is_form = @isForm
     WHERE key = @key AND closed_at IS NULL AND final_key IS NULL`,
  );
  const reserved = db.prepare(
    `SELECT coalesce(sum(CASE WHEN closed_at IS NULL THEN max_bytes END), 0) AS unfinished,
       coalesce(sum(CASE WHEN closed_at IS NOT NULL THEN max_bytes END), 0) AS finished
      FROM pending_uploads WHERE owner_id = ? AND key <> ?`,
  );
  const openForm = db.prepare(
    `SELECT * FROM pending_uploads
      WHERE owner_id = ? AND is_form = 1 AND replaces_image_id IS ? AND closed_at IS NULL AND final_key IS NULL
        AND expires_at > ?
      ORDER BY created_at DESC LIMIT 1`,
  );
  const unfinishedNew = db
    .prepare(
      `SELECT count(*) FROM pending_uploads
        WHERE owner_id = ? AND key <> ? AND closed_at IS NULL AND replaces_image_id IS NULL`,
    )
    .pluck();
  const live = db.prepare(
    `SELECT count(*) AS n, min(expires_at) AS oldest FROM pending_uploads
      WHERE owner_id = ? AND closed_at IS NULL AND expires_at > ?`,
  );
  const claim = db.prepare(
    `UPDATE pending_uploads SET final_key = ?, claimed_at = ?
      WHERE key = ? AND closed_at IS NULL AND final_key IS NULL`,
  );
  const release = db.prepare(
    'UPDATE pending_uploads SET final_key = NULL, claimed_at = NULL WHERE key = ? AND final_key = ? AND closed_at IS NULL',
  );
  const close = db.prepare(
    `UPDATE pending_uploads SET closed_at = @now, image_id = @imageId, etag = @etag
      WHERE key = @key AND closed_at IS NULL AND final_key IS @finalKey`,
  );
  const remove = db.prepare('DELETE FROM pending_uploads WHERE key = ?');
  const openReplacements = db
    .prepare('SELECT key FROM pending_uploads WHERE replaces_image_id = ? AND closed_at IS NULL')
    .pluck();
  const closeReplacements = db.prepare(
    'UPDATE pending_uploads SET closed_at = ? WHERE replaces_image_id = ? AND closed_at IS NULL',
  );
  const due = db.prepare(
    `SELECT * FROM pending_uploads WHERE expires_at <= ? AND (expires_at, key) > (?, ?)
      ORDER BY expires_at, key LIMIT ?`,
  );
  const finalKeyKnown = db.prepare('SELECT 1 FROM pending_uploads WHERE key = ? OR final_key = ?').pluck();

  return {
    get(key: string): PendingUpload | undefined {
      const row = byKey.get(key) as PendingRow | undefined;
      return row ? toPending(row) : undefined;
    },

    insert(row: Omit<PendingUpload, 'finalKey' | 'claimedAt' | 'closedAt' | 'etag' | 'imageId'>): void {
      insert.run({ ...row, isForm: row.isForm ? 1 : 0 });
    },

    /** The newest unfinished, unclaimed, unexpired page form of this owner for this target. */
    openForm(ownerId: string, replacesImageId: string | null, now: number): PendingUpload | undefined {
      const row = openForm.get(ownerId, replacesImageId, now) as PendingRow | undefined;
      return row ? toPending(row) : undefined;
    },

    /**
     * Another policy for an open row (the page visited again, or upload.js taking over its form):
     * the ceiling is the larger of the two, and a name is kept unless a new one is given. Taken
     * over, the row is no longer the page's form: no other visit or tab re-signs it again.
     */
    resign(
      key: string,
      o: { maxBytes: number; originalName: string; expiresAt: number; isForm: boolean },
    ): boolean {
      return resign.run({ key, ...o, isForm: o.isForm ? 1 : 0 }).changes === 1;
    },

    /**
     * What the owner's policies could still write, besides `exceptKey`'s: those of unfinished
     * uploads, and those of finished ones not swept yet (each can rewrite its own staging key).
     */
    reservedBytes(ownerId: string, exceptKey = ''): { unfinished: number; finished: number } {
      return reserved.get(ownerId, exceptKey) as { unfinished: number; finished: number };
    },

    /** Uploads not finished that could each still become a new image. */
    unfinishedNewImages(ownerId: string, exceptKey = ''): number {
      return unfinishedNew.get(ownerId, exceptKey) as number;
    },

    /** Open rows whose policy is still valid, and when the first of them expires. */
    live(ownerId: string, now: number): { count: number; oldestExpiresAt: number | null } {
      const r = live.get(ownerId, now) as { n: number; oldest: number | null };
      return { count: r.n, oldestExpiresAt: r.oldest };
    },

    /** Whoever sets the final key first completes the row; anyone else backs off. */
    claim(key: string, finalKey: string, now: number): boolean {
      return claim.run(finalKey, now, key).changes === 1;
    },

    release(key: string, finalKey: string): boolean {
      return release.run(key, finalKey).changes === 1;
    },

    /** Finishes the row, only if `finalKey` is still the claim (null: refused before any copy). */
    close(
      key: string,
      finalKey: string | null,
      imageId: string | null,
      now: number,
      etag: string | null = null,
    ): boolean {
      return close.run({ key, finalKey, imageId, now, etag }).changes === 1;
    },

    remove(key: string): void {
      remove.run(key);
    },

    /** The image is going: its open replacements end with it; their staging keys are returned to delete. */
    closeReplacementsOf(imageId: string, now: number): string[] {
      const keys = openReplacements.all(imageId) as string[];
      closeReplacements.run(now, imageId);
      return keys;
    },

    /** Rows whose policy expired (with the clock margin) by `now`, oldest first, from after `after`. */
    due(now: number, limit: number, after?: PendingUpload): PendingUpload[] {
      const rows = due.all(now - POLICY_CLOCK_MARGIN_MS, after?.expiresAt ?? -1, after?.key ?? '', limit);
      return (rows as PendingRow[]).map(toPending);
    },

    /** Whether a key is a staging key or a completion's final key that a row still names. */
    names(key: string): boolean {
      return finalKeyKnown.get(key, key) !== undefined;
    },
  };
}

export type PendingUploads = ReturnType<typeof createPendingUploads>;
