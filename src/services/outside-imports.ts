import type { Storage } from '../storage/storage.js';
import type { Clock } from './clock.js';
import { DomainError, Invalid, Unavailable } from './errors.js';
import type { PendingUploads } from './pending-uploads.js';
import type { Uploads } from './uploads.js';
import type { Users } from './users.js';

/** An original a tool put into a user's prefix: `users/<id>/originals/<name>`. */
export const OUTSIDE_ORIGINAL = /^users\/([a-z0-9]+)\/originals\/[^/]+$/;

/** What became of an object found under a user's originals/: as reconcile reports it. */
export type ImportOutcome =
  | { outcome: 'imported' }
  /** gone since it was seen (a completed upload's staging object its job just moved) */
  | { outcome: 'gone' }
  /** refused for good: not an image, over the quota… */
  | { outcome: 'rejected' }
  /** the bucket could not be read: tried again next time */
  | { outcome: 'skipped'; error: unknown };

/**
 * Makes an image of an object put into `users/<id>/originals/` outside the app, as an upload of
 * its owner's would be (the same checks, the same renditions): a pending row carries it through
 * the completion, and goes whatever happens. Reconcile and the live pickup of the embedded store's
 * changes both import this way.
 */
export function createOutsideImports(deps: {
  storage: Storage;
  uploads: Uploads;
  users: Users;
  pending: PendingUploads;
  clock: Clock;
}) {
  return {
    async importObject(ownerId: string, key: string): Promise<ImportOutcome | null> {
      const user = await deps.users.get(ownerId);
      if (!user) return null;
      const now = deps.clock();
      try {
        await deps.pending.insert({
          key,
          ownerId,
          originalName: key.split('/').pop() ?? '',
          replacesImageId: null,
          maxBytes: 0,
          isForm: false,
          createdAt: now,
          expiresAt: now,
        });
      } catch (err) {
        // Another import of the same key (reconcile and the live pickup at once) holds it: its own.
        if (await deps.pending.get(key)) return null;
        throw err;
      }
      try {
        await deps.uploads.complete(user, key, { outside: true });
        return { outcome: 'imported' };
      } catch (err) {
        // This run's row goes whatever stopped it (a refusal has removed it already): the next
        // look starts from the bucket again.
        await deps.pending.remove(key);
        // Gone since it was seen: it was a completed upload's staging object, which its job has
        // just copied into place and deleted. Nothing to import, nothing to report.
        if (err instanceof Invalid && (await deps.storage.head(key).catch(() => undefined)) === null)
          return { outcome: 'gone' };
        if (err instanceof DomainError && !(err instanceof Unavailable)) return { outcome: 'rejected' };
        return { outcome: 'skipped', error: err };
      }
    },
  };
}

export type OutsideImports = ReturnType<typeof createOutsideImports>;
