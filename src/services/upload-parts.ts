import { isImageType } from '../image-types.js';
import { can } from '../policy.js';
import { isStorableKey, type Storage } from '../storage/storage.js';
import type { Actor } from './audit.js';
import type { Clock } from './clock.js';
import { Conflict, fromStorage, Gone, Invalid, NotFound, Unavailable } from './errors.js';
import { type PendingUpload, type PendingUploads, POLICY_TTL_SECONDS } from './pending-uploads.js';
import { UNKNOWN_FILE_TYPE } from './sniff.js';
import { preloadImageModules } from './thumbnails.js';
import type { Completion, Uploads } from './uploads.js';
import type { User } from './users.js';

const MiB = 1024 * 1024;
/**
 * A part's size, and the size above which upload.js sends a file in parts: small enough that a
 * dropped connection costs little to send again, above S3's 5 MiB least part.
 */
export const PART_BYTES = 8 * MiB;
/** S3's most parts per upload: a larger file gets larger parts. */
const MAX_PARTS = 10_000;
/**
 * However long its parts keep it alive, an upload in parts ends this long after it began (the
 * embedded store drops multipart uploads older than a day itself).
 */
const PARTS_LIFETIME_MS = 12 * 60 * 60 * 1000;
const NOT_FOUND = 'That upload was not found. It may have expired: please upload again.';

export interface PartPlan {
  partBytes: number;
  count: number;
}

/** How a file of `size` bytes is cut: parts of `partBytes`, the last one shorter. */
export function partPlan(size: number): PartPlan {
  const partBytes = Math.max(PART_BYTES, Math.ceil(size / MAX_PARTS / MiB) * MiB);
  return { partBytes, count: Math.ceil(size / partBytes) };
}

/** The exact length of part `n` (from 1) of a file of `size` bytes. */
const partLength = (size: number, plan: PartPlan, n: number) =>
  n < plan.count ? plan.partBytes : size - plan.partBytes * (plan.count - 1);

/** What upload.js needs to send a file in parts. */
export interface StartedParts extends PartPlan {
  key: string;
}

/**
 * Large files from upload.js, in parts: the app reserves the upload as it does a POST policy's
 * (the same pending row, quota, open-upload limit and staging key under the user's own prefix),
 * starts the bucket's multipart upload, signs each part's URL for that part's exact length, and
 * at the end joins the parts the bucket holds (it asks the bucket, not the browser, which parts
 * arrived) and completes the file as any upload. The browser never holds the right to join, so
 * nothing it sends is a file until the app has checked every part.
 */
export function createUploadParts(deps: {
  storage: Storage;
  pending: PendingUploads;
  uploads: Uploads;
  clock: Clock;
  accept: 'images' | 'any';
}) {
  const { storage, pending, uploads, clock } = deps;
  /** Joins running in this process, so a repeated request waits for the same answer. */
  const joining = new Map<string, Promise<Completion>>();

  /** The user's open upload in parts with this key, or why not. */
  async function openRow(user: User, key: string): Promise<PendingUpload & { multipartId: string }> {
    const row = isStorableKey(key) ? await pending.get(key) : undefined;
    if (!row || !can(user, 'upload.complete', row)) throw new NotFound(NOT_FOUND);
    if (row.closedAt !== null || row.finalKey !== null)
      throw new Conflict('This upload is finished, or was given up.');
    // A POST policy's upload, or one whose parts are joined already.
    if (row.multipartId === null) throw new Conflict('This upload takes no more parts.');
    if (row.expiresAt <= clock()) throw new Gone('This upload expired. Please upload the file again.');
    return { ...row, multipartId: row.multipartId };
  }

  async function join(user: User, row: PendingUpload & { multipartId: string }, actor: Actor | undefined) {
    const plan = partPlan(row.maxBytes);
    const held = await fromStorage(storage.listParts(row.key, row.multipartId));
    // Null: joined (or given up) by another call meanwhile; the completion says which.
    if (held !== null) {
      const byNumber = new Map(held.map((p) => [p.partNumber, p]));
      const parts = [];
      for (let n = 1; n <= plan.count; n++) {
        const part = byNumber.get(n);
        // Each URL is signed for its part's exact length: any other size is not a part we signed.
        if (!part || part.size !== partLength(row.maxBytes, plan, n))
          throw new Invalid(`Part ${n} of ${plan.count} of the file has not arrived. Send it again.`);
        parts.push(part);
      }
      const joined = await fromStorage(storage.completeMultipart(row.key, row.multipartId, parts));
      if (joined) await pending.setMultipart(row.key, null);
      if (joined?.etag)
        return uploads.complete(user, row.key, { etag: joined.etag, ...(actor ? { actor } : {}) });
    }
    return uploads.complete(user, row.key, actor ? { actor } : {});
  }

  return {
    /**
     * Reserves an upload of exactly `size` bytes and starts its multipart upload. The bucket is
     * told the type the browser claims only if it is one of ours (completion sniffs the bytes).
     */
    async start(
      user: User,
      req: { name: string; size: number; type: string; replacesImageId?: string },
    ): Promise<StartedParts> {
      const { key } = await uploads.reserve(user, {
        from: 'script',
        originalName: req.name,
        size: req.size,
        ...(req.replacesImageId ? { replacesImageId: req.replacesImageId } : {}),
      });
      preloadImageModules();
      const contentType = deps.accept === 'images' && isImageType(req.type) ? req.type : UNKNOWN_FILE_TYPE;
      const multipartId = await fromStorage(storage.startMultipart(key, contentType)).catch(
        async (err: unknown) => {
          await pending.remove(key); // nothing was signed for it: the reservation goes
          throw err;
        },
      );
      const recorded = await pending.setMultipart(key, multipartId).catch(() => false);
      if (!recorded) {
        // Nothing was signed for it: the upload and its reservation go (the bucket's own expiry, or
        // the sweep, drops an upload this cannot abort).
        await storage.abortMultipart(key, multipartId).catch(() => undefined);
        await pending.remove(key);
        throw new Unavailable('The upload could not be started. Please try again.');
      }
      return { key, ...partPlan(req.size) };
    },

    /**
     * A URL for part `n`, signed for its exact length and for no longer than the upload's row now
     * lives: each part asked for moves the row's expiry on (up to PARTS_LIFETIME_MS from its start),
     * so a slow upload keeps going, and the sweep never drops parts a URL may still send.
     */
    async partUrl(user: User, key: string, n: number): Promise<{ url: string }> {
      const row = await openRow(user, key);
      const plan = partPlan(row.maxBytes);
      if (!Number.isInteger(n) || n < 1 || n > plan.count)
        throw new Invalid(`The part number must be from 1 to ${plan.count}.`);
      const now = clock();
      const expiresAt = Math.min(now + POLICY_TTL_SECONDS * 1000, row.createdAt + PARTS_LIFETIME_MS);
      if (expiresAt - now < 60_000)
        throw new Gone('This upload has taken too long. Please upload the file again.');
      await pending.extend(key, expiresAt);
      // Its row's expiry now, which no other call moves back.
      const ttlSeconds = Math.floor((Math.max(expiresAt, row.expiresAt) - now) / 1000);
      const url = await fromStorage(
        storage.presignPart({
          key,
          uploadId: row.multipartId,
          partNumber: n,
          bytes: partLength(row.maxBytes, plan, n),
          ttlSeconds: Math.min(ttlSeconds, POLICY_TTL_SECONDS),
        }),
      );
      return { url };
    },

    /**
     * Joins the parts into the file and completes it as any upload. Safe to call again: once
     * joined, a repeat is the completion's repeat (the same image).
     */
    async finish(user: User, key: string, actor?: Actor): Promise<Completion> {
      const row = isStorableKey(key) ? await pending.get(key) : undefined;
      if (!row || !can(user, 'upload.complete', row)) throw new NotFound(NOT_FOUND);
      // Joined already (or finished): the completion answers, or says what became of it.
      if (row.multipartId === null || row.closedAt !== null)
        return uploads.complete(user, key, actor ? { actor } : {});
      const running = joining.get(key);
      if (running !== undefined) return { ...(await running), isRepeat: true };
      const work = openRow(user, key)
        .then((open) => join(user, open, actor))
        .finally(() => joining.delete(key));
      joining.set(key, work);
      return work;
    },
  };
}
