import { randomBytes } from 'node:crypto';
import type { AccessEntry, KeyGrant } from '@s3-gallery/s3-store';
import type { AppDb } from '../db/database.js';
import { type AccessKeyRow, accessKeysRepository } from '../db/repositories/access-keys.js';
import { can } from '../policy.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import { Forbidden, Invalid, NotFound } from './errors.js';
import type { SecretBox } from './secret-box.js';
import { sha256Hex } from './tokens.js';
import type { User } from './users.js';

/**
 * What a key may do: `own`, read its owner's prefix (`users/<id>/`: originals and copies) and write
 * and delete originals there (`users/<id>/originals/`, what the app imports; the copies and uploads
 * in flight stay the app's); `read`, only read; `bucket`, read and write the whole bucket (admins).
 */
export type KeyScope = 'own' | 'read' | 'bucket';
export const KEY_SCOPES: readonly KeyScope[] = ['own', 'read', 'bucket'];

export interface AccessKey {
  id: string;
  name: string;
  scope: KeyScope;
  /** the keys it reads: `users/<id>/`, or '' for the whole bucket */
  prefix: string;
  /** the keys it writes: `users/<id>/originals/`, '' for the whole bucket, null for none */
  writePrefix: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** Where a key is used: the embedded store as people's tools reach it. */
export interface StoreEndpoint {
  endpoint: string;
  bucket: string;
  region: string;
}

/** Ids of people's keys start so (the store's own key starts S3G, then hex): one look tells them apart. */
const KEY_ID_PREFIX = 'S3GK';
const MAX_LIVE_KEYS = 10;
const NAME_MAX = 100;
/** A key's "last used" is written at most this often: a sync of 1,000 files writes it once. */
const TOUCH_EVERY_MS = 60 * 1000;
const MAX_OPEN_UPLOADS = 4;
/**
 * Audit rows being written at once for people's keys. Past it, requests are counted per key and
 * written as one row when the writes have caught up: a flood of cheap requests cannot queue
 * unbounded work on the database.
 */
const MAX_PENDING_ROWS = 200;

const prefixOf = (userId: string, scope: KeyScope) => (scope === 'bucket' ? '' : `users/${userId}/`);
const writePrefixOf = (userId: string, scope: KeyScope) =>
  scope === 'read' ? null : scope === 'bucket' ? '' : `users/${userId}/originals/`;

/** Whether someone of this role may hold a key of this scope: checked at creation and at every use. */
const mayHold = (user: Pick<User, 'id' | 'role'>, scope: KeyScope) =>
  scope === 'bucket' ? can(user, 'admin') : can(user, 'image.upload');

function toKey(row: AccessKeyRow): AccessKey {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope,
    prefix: prefixOf(row.user_id, row.scope),
    writePrefix: writePrefixOf(row.user_id, row.scope),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

/**
 * People's own S3 keys to the embedded store: made on the account page (the secret shown once),
 * each reaching only its owner's images (or only reading them; admins may make bucket-wide ones),
 * revoked at once, and every request made with one written to the audit log as its owner's.
 */
export function createAccessKeys(deps: {
  database: AppDb;
  clock: Clock;
  audit: Audit;
  box: SecretBox;
  /** null when the bucket is not the embedded store: keys are then IAM's business */
  store: StoreEndpoint | null;
  /** the largest object a person's key may write: MAX_UPLOAD_BYTES, as for an upload */
  maxObjectBytes: number;
}) {
  const { database, clock, audit, box, store } = deps;
  const keys = accessKeysRepository(database);
  let pendingRows = 0;
  /** requests not written one by one while too many were pending, by key id */
  const uncounted = new Map<string, number>();

  /** One row for the requests of each key that were only counted. */
  async function writeCounted(): Promise<void> {
    const counted = [...uncounted];
    uncounted.clear();
    for (const [id, n] of counted) {
      const row = await keys.withOwner(id);
      if (!row) continue;
      await audit.record({
        action: 's3_request',
        actor: { id: row.user_id, email: row.email },
        target: null,
        detail: `${n} more request(s) with key ${row.id} “${row.name}”, not written one by one (over ${MAX_PENDING_ROWS} at once)`,
      });
    }
  }

  /** A key's row for its owner or an admin; NotFound for anyone else, as for no key at all. */
  async function seenBy(user: User, id: string) {
    const row = await keys.withOwner(id);
    if (!row || (row.user_id !== user.id && !can(user, 'admin'))) throw new NotFound('There is no such key.');
    return row;
  }

  return {
    store,

    async list(user: User): Promise<AccessKey[]> {
      return (await keys.ofUser(user.id)).map(toKey);
    },

    /** A new key; its secret is in the answer and nowhere readable again. */
    async create(
      actor: Actor,
      opts: { name: string; scope: KeyScope },
    ): Promise<{ key: AccessKey; secret: string }> {
      if (!store)
        throw new Invalid('Personal keys are for the embedded store; this app uses another bucket.');
      const { user } = actor;
      const name = opts.name.trim();
      if (!name || [...name].length > NAME_MAX)
        throw new Invalid(`Name the key (up to ${NAME_MAX} characters), e.g. after the computer it is for.`);
      if (!mayHold(user, opts.scope))
        throw new Forbidden(
          opts.scope === 'bucket' ? 'Only admins make bucket-wide keys.' : 'Your role cannot hold a key.',
        );
      const id = `${KEY_ID_PREFIX}${randomBytes(10).toString('hex').toUpperCase()}`;
      const secret = randomBytes(30).toString('base64url');
      const row: AccessKeyRow = {
        id,
        user_id: user.id,
        name,
        scope: opts.scope,
        secret_box: await box.seal(secret, id),
        created_at: clock(),
        last_used_at: null,
        revoked_at: null,
      };
      await database.transaction(async () => {
        if ((await keys.countLive(user.id)) >= MAX_LIVE_KEYS)
          throw new Invalid(`You have ${MAX_LIVE_KEYS} keys already: revoke one you no longer use first.`);
        await keys.insert(row);
        await audit.change(actor, 'key_create', { target: id, detail: `“${name}”, ${opts.scope}` });
      });
      return { key: toKey(row), secret };
    },

    /**
     * The key `id` and its secret, if it is this person's, still live, and `secret` is its secret:
     * what the page after making it shows (once; the secret came back in a cookie).
     */
    async newKeyOf(
      user: User,
      id: string,
      secret: string,
    ): Promise<{ key: AccessKey; secret: string } | undefined> {
      const row = await keys.withOwner(id);
      if (!row || row.user_id !== user.id || row.revoked_at !== null) return undefined;
      const kept = await box.open(row.secret_box, row.id).catch(() => undefined);
      // Compared by their hashes: how long the comparison takes says nothing of the secret.
      if (kept === undefined || sha256Hex(kept) !== sha256Hex(secret)) return undefined;
      return { key: toKey(row), secret: kept };
    },

    /** A key its owner or an admin may see and revoke; NotFound for anyone else. */
    async get(user: User, id: string): Promise<AccessKey> {
      return toKey(await seenBy(user, id));
    },

    /** Revokes a key: its owner's or, for an admin, anyone's. Requests signed with it fail at once. */
    async revoke(actor: Actor, id: string): Promise<void> {
      const row = await seenBy(actor.user, id);
      await database.transaction(async () => {
        if (await keys.revoke(id, clock()))
          await audit.change(actor, 'key_revoke', { target: id, detail: `“${row.name}” of ${row.email}` });
      });
    },

    /**
     * What a request signed with this key id may do (the store asks on every request): nothing when
     * the key is unknown, revoked, its owner disabled or no longer of a role that may hold it, or
     * its secret cannot be opened (DATA_DIR's key file replaced).
     */
    async grantFor(accessKeyId: string): Promise<KeyGrant | undefined> {
      if (!accessKeyId.startsWith(KEY_ID_PREFIX)) return undefined;
      const row = await keys.withOwner(accessKeyId);
      if (!row || row.revoked_at !== null || row.is_disabled === 1) return undefined;
      if (!mayHold({ id: row.user_id, role: row.role }, row.scope)) return undefined;
      const secret = await box.open(row.secret_box, row.id).catch(() => undefined);
      if (secret === undefined) return undefined;
      const grant = {
        secretAccessKey: secret,
        readPrefix: prefixOf(row.user_id, row.scope),
        writePrefix: writePrefixOf(row.user_id, row.scope),
      };
      // A person's key writes what an upload could, where the app imports it (nothing deeper, which
      // no one would see), with a few multipart uploads at a time: their limits hold, and the
      // import holds the quota.
      return row.scope === 'bucket'
        ? grant
        : {
            ...grant,
            flatWrites: true,
            maxObjectBytes: deps.maxObjectBytes,
            maxOpenUploads: MAX_OPEN_UPLOADS,
          };
    },

    /** A request made with a person's key, once answered: an audit row in their name, and "last used". */
    async recordRequest(entry: AccessEntry): Promise<void> {
      // A request whose signature did not verify was not made with the key: nothing to attribute
      // (and anyone who knows an id could write rows in its owner's name).
      if (!entry.authenticated || !entry.accessKeyId.startsWith(KEY_ID_PREFIX)) return;
      if (pendingRows >= MAX_PENDING_ROWS) {
        uncounted.set(entry.accessKeyId, (uncounted.get(entry.accessKeyId) ?? 0) + 1);
        return;
      }
      pendingRows++;
      try {
        const row = await keys.withOwner(entry.accessKeyId);
        if (!row) return; // deleted with its owner since
        const refused = entry.status === '-' || entry.status >= 400;
        if (!refused) await keys.touch(row.id, clock(), TOUCH_EVERY_MS);
        await audit.record({
          action: 's3_request',
          actor: { id: row.user_id, email: row.email },
          ip: entry.remoteIp,
          target: entry.key === '-' ? null : entry.key,
          detail: `${entry.operation} ${entry.status}${entry.errorCode === '-' ? '' : ` ${entry.errorCode}`}, key ${row.id} “${row.name}”`,
        });
      } finally {
        pendingRows--;
      }
      if (pendingRows === 0 && uncounted.size > 0) await writeCounted();
    },
  };
}

export type AccessKeys = ReturnType<typeof createAccessKeys>;
