import type { AppDb } from '../db/database.js';
import { type PendingUpload, pendingUploadsRepository } from '../db/repositories/pending-uploads.js';

export type { PendingUpload } from '../db/repositories/pending-uploads.js';

/**
 * Where the bucket puts a file's own name in the key of a plain form's upload (as S3 does): that
 * upload's row is a prefix, `users/<id>/uploads/<upload>/`, and its policy allows any one name
 * under it. Every other row's key is its object's key.
 */
export const FILENAME_PLACEHOLDER = '$' + '{filename}';
/** The object's name under a plain form's prefix once upload.js takes it over (it sends the name itself). */
export const SCRIPT_FILE_NAME = 'file';
const UNDER_PREFIX = /^(users\/[^/]+\/uploads\/[^/]+\/)[^/]*$/;

/** The key of the pending upload an object (or a form's key field) belongs to. */
export const uploadKeyOf = (objectKey: string): string => UNDER_PREFIX.exec(objectKey)?.[1] ?? objectKey;

/** Whether a row is a plain form's prefix, its file stored under it by name. */
export const isPrefixUpload = (rowKey: string): boolean => rowKey.endsWith('/');

/** How long a signed POST policy may be used. */
export const POLICY_TTL_SECONDS = 15 * 60;
/**
 * The bucket's clock may run ahead of or behind ours: a policy counts as live this long after its
 * expiry, so nothing it could still write escapes the sweep.
 */
export const POLICY_CLOCK_MARGIN_MS = 5 * 60 * 1000;

/**
 * The pending uploads (one row per signed POST policy, see PendingUpload): the repository's
 * operations, with what the rules add to them.
 */
export function createPendingUploads({ database }: { database: AppDb }) {
  const repo = pendingUploadsRepository(database);
  return {
    get: repo.get,

    insert: repo.insert,

    /** The newest unfinished, unclaimed, unexpired page form of this owner for this target. */
    openForm: repo.openForm,

    /**
     * Another policy for an open row (the page visited again, or upload.js taking over its form):
     * the ceiling is the larger of the two, and a name is kept unless a new one is given. Taken
     * over, the row is no longer the page's form: no other visit or tab re-signs it again.
     */
    resign: repo.resign,

    /**
     * What the owner's policies could still write, besides `exceptKey`'s: those of unfinished
     * uploads, and those of finished ones not swept yet (each can rewrite its own staging key).
     */
    reservedBytes: (ownerId: string, exceptKey = '') => repo.reservedBytes(ownerId, exceptKey),

    /** Uploads not finished that could each still become a new image. */
    unfinishedNewImages: (ownerId: string, exceptKey = '') => repo.unfinishedNewImages(ownerId, exceptKey),

    /** Open rows whose policy is still valid, and when the first of them expires. */
    live: repo.live,

    /** Whoever sets the final key first completes the row; anyone else backs off. */
    claim: repo.claim,

    release: repo.release,

    /** Finishes the row, only if `finalKey` is still the claim (null: refused before any copy). */
    close: (
      key: string,
      finalKey: string | null,
      imageId: string | null,
      now: number,
      etag: string | null = null,
    ) => repo.close(key, finalKey, imageId, now, etag),

    remove: repo.remove,

    setMultipart: repo.setMultipart,

    /** What a guest link's unfinished uploads may still write (with the clock margin). */
    guestReserved: (linkId: string, exceptKey: string, now: number) =>
      repo.guestReserved(linkId, exceptKey, now - POLICY_CLOCK_MARGIN_MS),

    extend: repo.extend,

    /** The image is going: its open replacements end with it; their staging keys are returned to delete. */
    closeReplacementsOf: repo.closeReplacementsOf,

    /** Rows whose policy expired (with the clock margin) by `now`, oldest first, from after `after`. */
    due: (now: number, limit: number, after?: PendingUpload) =>
      repo.due(now - POLICY_CLOCK_MARGIN_MS, limit, after),

    /** Whether a key is a staging key (or one under a row's prefix) or a completion's final key that a row still names. */
    names: async (key: string) =>
      (await repo.names(key)) || (uploadKeyOf(key) !== key && (await repo.names(uploadKeyOf(key)))),
  };
}

export type PendingUploads = ReturnType<typeof createPendingUploads>;
