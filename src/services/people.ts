import type { Db } from '../db/connection.js';
import type { AppDb } from '../db/database.js';
import type { Storage } from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import { Conflict, Invalid, NotFound } from './errors.js';
import type { Images } from './images.js';
import { type Role, rowToUser, type User, type UserRow, type Users } from './users.js';

export interface PersonSummary extends User {
  imageCount: number;
  bytesUsed: number;
}

/** Largest quota an admin can type: 1 PiB, far past any real bucket, and exact in a double. */
const MAX_QUOTA_BYTES = 2 ** 50;
const MAX_QUOTA_IMAGES = 10_000_000;

/** What an admin does to accounts: every change that could lock everyone out is refused here. */
export function createPeople(deps: {
  db: Db;
  database: AppDb;
  storage: Storage;
  audit: Audit;
  users: Users;
  images: Images;
}) {
  const { db, database, storage, audit } = deps;
  const listAll = db.prepare(
    `SELECT u.*, count(i.id) AS image_count, coalesce(sum(i.bytes), 0) AS bytes_used
       FROM users u LEFT JOIN images i ON i.owner_id = u.id
      GROUP BY u.id ORDER BY u.created_at, u.id`,
  );
  const activeAdmins = db
    .prepare("SELECT count(*) FROM users WHERE role = 'admin' AND is_disabled = 0 AND id <> ?")
    .pluck();
  const imageKeys = db.prepare('SELECT original_key, display_key, thumb_key FROM images WHERE owner_id = ?');
  const removeUser = db.prepare('DELETE FROM users WHERE id = ?');
  const setQuotaStmt = db.prepare('UPDATE users SET quota_bytes = ?, quota_images = ? WHERE id = ?');

  function target(id: string): User {
    const user = deps.users.get(id);
    if (!user) throw new NotFound('There is no such user.');
    return user;
  }

  /** Throws unless some other enabled admin would remain. Runs inside the change's transaction. */
  function keepAnAdmin(user: User): void {
    if (user.role === 'admin' && !user.isDisabled && (activeAdmins.get(user.id) as number) === 0) {
      throw new Conflict('This is the last active admin. Make someone else an admin first.');
    }
  }

  return {
    list(): PersonSummary[] {
      return (listAll.all() as (UserRow & { image_count: number; bytes_used: number })[]).map((row) => ({
        ...rowToUser(row),
        imageCount: row.image_count,
        bytesUsed: row.bytes_used,
      }));
    },

    async changeRole(actor: Actor, id: string, role: Role): Promise<void> {
      await database.transaction(async () => {
        const user = target(id);
        if (role !== 'admin') keepAnAdmin(user);
        await deps.users.setRole(id, role);
        await audit.change(actor, 'role_change', { target: user.email, detail: `${user.role} → ${role}` });
      });
    },

    async setDisabled(actor: Actor, id: string, isDisabled: boolean): Promise<void> {
      await database.transaction(async () => {
        const user = target(id);
        if (isDisabled) keepAnAdmin(user);
        await deps.users.setDisabled(id, isDisabled);
        await audit.change(actor, isDisabled ? 'disable' : 'enable', { target: user.email });
      });
    },

    /** Blank fields mean "no limit". Sizes come from the form in MiB. */
    async setQuota(actor: Actor, id: string, input: { mib: string; images: string }): Promise<void> {
      const user = target(id);
      const bytes = parseLimit(input.mib, 'storage', MAX_QUOTA_BYTES / 2 ** 20);
      const images = parseLimit(input.images, 'image', MAX_QUOTA_IMAGES);
      const quota = { bytes: bytes === null ? null : Math.round(bytes * 2 ** 20), images };
      await database.transaction(async () => {
        setQuotaStmt.run(quota.bytes, quota.images, user.id);
        await audit.change(actor, 'quota_change', {
          target: user.email,
          detail: `${quota.bytes ?? 'no'} byte limit, ${quota.images ?? 'no'} image limit`,
        });
      });
    },

    /**
     * Deletes the account, its sessions, links and images. Keys are queued in the same transaction,
     * then everything under the user's prefix goes, so uploads that never finished leave nothing.
     */
    async deleteUser(actor: Actor, id: string, typedEmail: string): Promise<void> {
      const user = target(id);
      if (user.id === actor.user.id) throw new Conflict('You cannot delete your own account here.');
      if (typedEmail.trim().toLowerCase() !== user.email.toLowerCase()) {
        throw new Invalid(`Type the email address ${user.email} to confirm.`);
      }
      const keys = await database.transaction(async () => {
        keepAnAdmin(user);
        const all: string[] = [];
        for (const row of imageKeys.all(user.id) as Record<string, string>[]) {
          for (const key of Object.values(row)) {
            await deps.images.queueDeletion(key);
            all.push(key);
          }
        }
        removeUser.run(user.id);
        await audit.change(actor, 'user_delete', { target: user.email, detail: `role ${user.role}` });
        return all;
      });
      await deps.images.deleteObjects(keys);
      try {
        let cursor: string | undefined;
        do {
          const page = await storage.list(`users/${user.id}/`, cursor);
          await deps.images.discardObjects(page.keys.map((k) => k.key));
          cursor = page.nextCursor;
        } while (cursor);
      } catch {
        // The account is gone either way; reconcile removes what is left under a prefix with no user.
      }
    },
  };
}

function parseLimit(input: string, what: string, max: number): number | null {
  const text = input.trim();
  if (text === '') return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > max || (what === 'image' && !Number.isInteger(value))) {
    throw new Invalid(
      `The ${what} limit must be ${what === 'image' ? 'a whole number' : 'a number of MiB'} from 0 to ${max}, or blank for no limit.`,
    );
  }
  return value;
}
