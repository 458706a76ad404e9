import type { AppDb } from '../db/database.js';
import { imagesRepository } from '../db/repositories/images.js';
import { pendingUploadsRepository } from '../db/repositories/pending-uploads.js';
import { usersRepository } from '../db/repositories/users.js';
import type { Storage } from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import { Conflict, Invalid, NotFound } from './errors.js';
import type { Images } from './images.js';
import { type Role, rowToUser, type User, type Users } from './users.js';

export interface PersonSummary extends User {
  imageCount: number;
  bytesUsed: number;
}

/** Largest quota an admin can type: 1 PiB, far past any real bucket, and exact in a double. */
const MAX_QUOTA_BYTES = 2 ** 50;
const MAX_QUOTA_IMAGES = 10_000_000;

/** What an admin does to accounts: every change that could lock everyone out is refused here. */
export function createPeople(deps: {
  database: AppDb;
  storage: Storage;
  audit: Audit;
  users: Users;
  images: Images;
}) {
  const { database, storage, audit } = deps;
  const userRows = usersRepository(database);
  const imageRows = imagesRepository(database);
  const pendingRows = pendingUploadsRepository(database);

  async function target(id: string): Promise<User> {
    const user = await deps.users.get(id);
    if (!user) throw new NotFound('There is no such user.');
    return user;
  }

  /**
   * Throws unless some other enabled admin would remain. Runs inside the change's transaction, with
   * the target read in it too: two admins demoting each other at once cannot both pass (SQLite's
   * write lock orders them; PostgreSQL's SERIALIZABLE aborts one, which then runs again and sees
   * the other's change).
   */
  async function keepAnAdmin(user: User): Promise<void> {
    if (user.role === 'admin' && !user.isDisabled && (await userRows.countOtherActiveAdmins(user.id)) === 0) {
      throw new Conflict('This is the last active admin. Make someone else an admin first.');
    }
  }

  return {
    async list(): Promise<PersonSummary[]> {
      return (await userRows.listWithUsage()).map((row) => ({
        ...rowToUser(row),
        imageCount: row.image_count,
        bytesUsed: row.bytes_used,
      }));
    },

    async changeRole(actor: Actor, id: string, role: Role): Promise<void> {
      await database.transaction(async () => {
        const user = await target(id);
        if (role !== 'admin') await keepAnAdmin(user);
        await deps.users.setRole(id, role);
        await audit.change(actor, 'role_change', { target: user.email, detail: `${user.role} → ${role}` });
      });
    },

    async setDisabled(actor: Actor, id: string, isDisabled: boolean): Promise<void> {
      await database.transaction(async () => {
        const user = await target(id);
        if (isDisabled) await keepAnAdmin(user);
        await deps.users.setDisabled(id, isDisabled);
        await audit.change(actor, isDisabled ? 'disable' : 'enable', { target: user.email });
      });
    },

    /** Blank fields mean "no limit". Sizes come from the form in MiB. */
    async setQuota(actor: Actor, id: string, input: { mib: string; images: string }): Promise<void> {
      const user = await target(id);
      const bytes = parseLimit(input.mib, 'storage', MAX_QUOTA_BYTES / 2 ** 20);
      const images = parseLimit(input.images, 'image', MAX_QUOTA_IMAGES);
      const quota = { bytes: bytes === null ? null : Math.round(bytes * 2 ** 20), images };
      await database.transaction(async () => {
        await userRows.setQuota(user.id, quota);
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
      const user = await target(id);
      if (user.id === actor.user.id) throw new Conflict('You cannot delete your own account here.');
      if (typedEmail.trim().toLowerCase() !== user.email.toLowerCase()) {
        throw new Invalid(`Type the email address ${user.email} to confirm.`);
      }
      const { keys, inParts } = await database.transaction(async () => {
        // Read again inside: an admin who was demoted or disabled since still counts as one here.
        const current = await target(id);
        await keepAnAdmin(current);
        const all = await imageRows.keysOfOwner(current.id);
        await deps.images.queueDeletion(all);
        // Their uploads in parts go with their rows: read first, so the bucket drops their parts
        // (and the URLs signed for them stop working) once the account is gone.
        const multipart = await pendingRows.multipartOf(current.id);
        await userRows.delete(current.id);
        await audit.change(actor, 'user_delete', { target: current.email, detail: `role ${current.role}` });
        return { keys: all, inParts: multipart };
      });
      await deps.images.deleteObjects(keys);
      try {
        for (const upload of inParts) await storage.abortMultipart(upload.key, upload.multipartId);
        let cursor: string | undefined;
        do {
          const page = await storage.list(`users/${user.id}/`, cursor);
          // An upload of theirs replacing someone else's image (an admin's) stages under their
          // prefix: kept until that image's copy has landed (then it goes with the copy).
          const keys: string[] = [];
          for (const { key } of page.keys) {
            const isStaging = key.startsWith(`users/${user.id}/uploads/`);
            if (!isStaging || !(await deps.images.usesKey(key))) keys.push(key);
          }
          await deps.images.discardObjects(keys);
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
