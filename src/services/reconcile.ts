import type { Db } from '../db/connection.js';
import type { Storage } from '../storage/s3.js';
import type { Audit } from './audit.js';
import type { Clock } from './clock.js';
import { UserError } from './errors.js';
import type { Images } from './images.js';
import type { Uploads } from './uploads.js';
import type { Users } from './users.js';

/** Objects younger than this may belong to a completion still running; they are left alone. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;
const ORIGINAL_KEY = /^users\/([a-z0-9]+)\/originals\/[^/]+$/;

export interface ReconcileReport {
  apply: boolean;
  completed: string[];
  imported: string[];
  rejected: string[];
  expired: string[];
  orphansDeleted: string[];
  retriedDeletes: string[];
  stillFailing: string[];
}

/**
 * Brings the database and the bucket back into agreement: finishes uploads whose browser never
 * came back, imports originals put into a user's prefix from outside the app, drops expired
 * pending rows and orphaned objects, and retries deletes that failed. Dry run unless apply.
 */
export function createReconcile(
  db: Db,
  storage: Storage,
  deps: { users: Users; uploads: Uploads; images: Images; audit: Audit; clock: Clock },
) {
  const pendingAll = db.prepare('SELECT key, owner_id, expires_at FROM pending_uploads ORDER BY created_at');
  const removePending = db.prepare('DELETE FROM pending_uploads WHERE key = ?');
  const queued = db.prepare('SELECT key FROM storage_deletions ORDER BY queued_at LIMIT 10000').pluck();
  const knownKey = db.prepare(
    `SELECT 1 FROM images WHERE original_key = @k OR display_key = @k OR thumb_key = @k
     UNION ALL SELECT 1 FROM pending_uploads WHERE key = @k UNION ALL SELECT 1 FROM storage_deletions WHERE key = @k
     LIMIT 1`,
  );
  const insertPending = db.prepare(
    `INSERT INTO pending_uploads (key, owner_id, original_name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
  );

  async function finish(
    userId: string,
    key: string,
    apply: boolean,
    outside = false,
  ): Promise<'done' | 'rejected'> {
    const user = deps.users.get(userId);
    if (!user || !apply) return 'done';
    try {
      await deps.uploads.complete(user, key, { outside });
      return 'done';
    } catch (err) {
      if (err instanceof UserError && err.status !== 503) return 'rejected';
      throw err;
    }
  }

  return {
    async run({ apply }: { apply: boolean }): Promise<ReconcileReport> {
      const report: ReconcileReport = {
        apply,
        completed: [],
        imported: [],
        rejected: [],
        expired: [],
        orphansDeleted: [],
        retriedDeletes: [],
        stillFailing: [],
      };
      const now = deps.clock();

      const keys = queued.all() as string[];
      if (keys.length > 0) {
        if (apply) {
          await deps.images.deleteObjects(keys);
          const left = new Set(queued.all() as string[]);
          for (const k of keys) (left.has(k) ? report.stillFailing : report.retriedDeletes).push(k);
        } else report.retriedDeletes.push(...keys);
      }

      for (const p of pendingAll.all() as { key: string; owner_id: string; expires_at: number }[]) {
        if (await storage.head(p.key)) {
          const outcome = await finish(p.owner_id, p.key, apply);
          (outcome === 'done' ? report.completed : report.rejected).push(p.key);
        } else if (p.expires_at <= now) {
          if (apply) removePending.run(p.key);
          report.expired.push(p.key);
        }
      }

      let cursor: string | undefined;
      do {
        const page = await storage.list('users/', cursor);
        for (const object of page.keys) {
          if (knownKey.get({ k: object.key })) continue;
          const owner = ORIGINAL_KEY.exec(object.key)?.[1];
          if (owner && deps.users.get(owner)) {
            if (apply) insertPending.run(object.key, owner, object.key.split('/').pop() ?? '', now, now);
            const outcome = await finish(owner, object.key, apply, true);
            if (apply && outcome === 'done')
              deps.audit.record({ action: 'outside_upload', actor: null, target: object.key });
            (outcome === 'done' ? report.imported : report.rejected).push(object.key);
            continue;
          }
          const age = object.lastModified ? now - object.lastModified.getTime() : Number.POSITIVE_INFINITY;
          if (age < ORPHAN_GRACE_MS) continue;
          if (apply) await deps.images.discardObjects([object.key]);
          report.orphansDeleted.push(object.key);
        }
        cursor = page.nextCursor;
      } while (cursor);
      return report;
    },
  };
}
