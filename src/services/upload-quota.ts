import { formatBytes } from '../format.js';
import { Forbidden, NotFound, TooLarge } from './errors.js';
import type { Image, ImageRow, Images } from './images.js';
import { type PendingUploads, POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS } from './pending-uploads.js';
import { SWEEP_INTERVAL_MS } from './upload-sweeper.js';
import type { Users } from './users.js';

/** How long at most a pending upload holds its room: its policy, the clock margin, then a sweep. */
const RELEASE_MINUTES = Math.ceil(
  (POLICY_TTL_SECONDS * 1000 + POLICY_CLOCK_MARGIN_MS + SWEEP_INTERVAL_MS) / 60_000,
);

/**
 * The quota rules for uploads. At presign, what every unfinished upload's policy could still write
 * counts (admission); at completion, only what is stored, checked inside the transaction that adds
 * the image (the guarantee). A finished upload's policy can only rewrite its own staging key, which
 * no image uses (one object at most, until the sweep deletes it): those leftovers are free up to the
 * quota, or every upload would count twice for 25 minutes; beyond it they are held, or refused
 * uploads (which cost nothing) could park any amount. So a member's objects stay under three times
 * the quota even for a moment: images, plus twice the quota in what policies could write.
 */
export function createUploadQuota(deps: { users: Users; images: Images; pending: PendingUploads }) {
  const { users, images, pending } = deps;
  return {
    /**
     * What may still be uploaded: images and bytes stored, plus what every unfinished upload of the
     * user could still write (and finished ones beyond the quota). Throws when nothing is left, or
     * not `size`; returns the bytes left (Infinity without a quota).
     */
    async roomForPolicy(
      ownerId: string,
      replaced: Image | null,
      exceptKey: string,
      size?: number,
    ): Promise<number> {
      const fresh = await users.get(ownerId);
      if (!fresh) throw new NotFound('That account no longer exists.');
      const used = await images.usage(ownerId);
      if (!replaced && fresh.quotaImages !== null) {
        if (used.images >= fresh.quotaImages) {
          throw new Forbidden(
            `You have reached your limit of ${fresh.quotaImages} images (the trash counts too). Delete some and empty the trash, or ask an admin for more.`,
          );
        }
        const unfinished = await pending.unfinishedNewImages(ownerId, exceptKey);
        if (used.images + unfinished >= fresh.quotaImages) {
          throw new Forbidden(
            `You have reached your limit of ${fresh.quotaImages} images, counting ${unfinished} upload${unfinished === 1 ? '' : 's'} not finished yet. Finish them, or wait: an unfinished upload is given up within ${RELEASE_MINUTES} minutes.`,
          );
        }
      }
      if (fresh.quotaBytes === null) return Number.POSITIVE_INFINITY;
      const { unfinished, finished } = await pending.reservedBytes(ownerId, exceptKey);
      const held = Math.max(0, finished - fresh.quotaBytes);
      const free = fresh.quotaBytes - used.bytes - unfinished + (replaced?.bytes ?? 0);
      const left = free - held;
      // Said plainly when the file would not fit anyway; the hold is named when it is what stands in the way.
      if (size !== undefined && size > free && free > 0) {
        throw new TooLarge(
          `That file (${formatBytes(size)}) is larger than what is left of your storage quota (${formatBytes(free)}).`,
        );
      }
      if (left <= 0 || (size !== undefined && size > left)) {
        throw new Forbidden(
          held > 0 && free > 0
            ? `Your storage quota is used up, counting ${formatBytes(unfinished + held)} held for recent uploads, whose upload links could still be used. It is released within ${RELEASE_MINUTES} minutes; or delete some images, or ask an admin for more.`
            : unfinished > 0
              ? `Your storage quota is used up, counting ${formatBytes(unfinished)} held for uploads not finished yet. Finish them, or wait: an unfinished upload is given up within ${RELEASE_MINUTES} minutes; or delete some images, or ask an admin for more.`
              : 'Your storage quota is used up (the trash counts too). Delete some images and empty the trash, or ask an admin for more.',
        );
      }
      return left;
    },

    /** The rule the completion's transaction enforces on what is stored; null when the file fits. */
    async refusal(ownerId: string, bytes: number, replaced: ImageRow | undefined): Promise<string | null> {
      const fresh = await users.get(ownerId);
      if (!fresh) return 'The account this upload was for no longer exists, so it was not kept.';
      const used = await images.usage(ownerId);
      if (!replaced && fresh.quotaImages !== null && used.images + 1 > fresh.quotaImages) {
        return `You have reached your limit of ${fresh.quotaImages} images, so this upload was not kept.`;
      }
      if (fresh.quotaBytes !== null && used.bytes - (replaced?.bytes ?? 0) + bytes > fresh.quotaBytes) {
        return 'That file would go over your storage quota, so it was not kept.';
      }
      return null;
    },
  };
}
