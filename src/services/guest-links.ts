import type { AppDb } from '../db/database.js';
import { albumsRepository } from '../db/repositories/albums.js';
import { type GuestLinkRow, guestLinksRepository } from '../db/repositories/guest-links.js';
import { type ImageRow, imagesRepository } from '../db/repositories/images.js';
import { pendingUploadsRepository } from '../db/repositories/pending-uploads.js';
import { formatBytes } from '../format.js';
import { PASSWORD_MAX, SHARE_PASSWORD_MIN } from '../limits.js';
import { can } from '../policy.js';
import { isStorableKey } from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import type { DeviceTokens } from './device-tokens.js';
import { Forbidden, Gone, Invalid, NotFound, TooLarge, Unauthenticated } from './errors.js';
import { cleanText, type Images } from './images.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { uploadKeyOf } from './pending-uploads.js';
import { addressKey, charge, createBackoff, createRateLimit } from './rate-limit.js';
import { SHARE_EXPIRIES, SHARE_GUESS_LIMITS, type ShareExpiry } from './shares.js';
import { randomToken, sha256Hex } from './tokens.js';
import type { Completion, PresignedUpload, Uploads } from './uploads.js';
import type { User, Users } from './users.js';

const MiB = 1024 * 1024;
export const GUEST_LABEL_MAX = 100;
export const GUEST_MESSAGE_MAX = 1000;
export const GUEST_NAME_MAX = 100;
/** Files one link may take in all; the bytes are bounded by MAX_GUEST_MIB. */
const MAX_GUEST_FILES = 10_000;
const MAX_GUEST_MIB = 1024 * 1024;
/** Links in force one person may hold at once. */
const MAX_LIVE_GUEST_LINKS = 50;
/** Thumbnails of a visit's own uploads shown to the guest at most, and of a link's to its owner. */
const VISIT_IMAGES = 60;
const LINK_IMAGES = 500;
/**
 * New visits (each a form that holds room) one address may start on a link per hour, and files
 * the upload script may ask policies for: a leaked link cannot be scripted to hold all its room,
 * while a crowd behind one address (a venue's Wi-Fi) still gets through.
 */
const GUEST_VISITS_PER_HOUR = 100;
const GUEST_FILES_PER_HOUR = 600;

/** A guest link as its owner (or an admin) sees it. */
export interface GuestLink {
  id: string;
  ownerId: string;
  ownerEmail: string;
  label: string;
  message: string;
  maxFiles: number;
  maxBytes: number;
  /** the per-file limit: the link's own, or the server's MAX_UPLOAD_BYTES */
  maxFileBytes: number;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  filesAccepted: number;
  bytesAccepted: number;
  hasPassword: boolean;
  /** the album its uploads go to, when there is one */
  albumId: string | null;
  albumName: string | null;
  /** guests give their name, kept with each file */
  askName: boolean;
  /** its owner is emailed of each file it brings */
  notifyOwner: boolean;
}

export type GuestLinkState = 'active' | 'expired' | 'revoked' | 'full';

/** A link as its owner's pages list it. */
export interface GuestLinkListing {
  link: GuestLink;
  state: GuestLinkState;
  /** turned off, and not expired since: it may be turned on again */
  canTurnOn: boolean;
}

export interface GuestLinkOptions {
  label: string;
  message: string;
  expiry: ShareExpiry;
  /** blank for the most a link takes */
  maxFiles: string;
  /** MiB; blank for the most a link takes */
  maxMib: string;
  /** MiB a file; blank for the server's upload limit */
  maxFileMib: string;
  /** blank for none */
  password?: string;
  /** one of the maker's albums, or blank */
  albumId?: string;
  askName?: boolean;
  /** email the maker of each file (default: yes) */
  notifyOwner?: boolean;
}

/** A guest's upload as the page sends it: the link's token and the visit's cookie. */
export interface GuestVisit {
  token: string;
  /** the visit's cookie, as the browser holds it (only its hash is stored) */
  cookie: string;
  ip: string;
  /** the pass a browser got for giving the link's password (see unlock) */
  pass?: string | undefined;
  /** the name the guest gave (links that ask for one) */
  name?: string | undefined;
}

/** A thumbnail of an upload of this visit (null until ready). */
export interface VisitImage {
  id: string;
  title: string;
  thumbUrl: string | null;
  state: 'processing' | 'ready' | 'failed';
  /** the name the guest gave, for the owner's view */
  guestName: string | null;
}

/** A whole number from a form field within [1, max], or `fallback` when blank. */
function limitOf(input: string, what: string, max: number, fallback: number): number {
  const text = input.trim();
  if (text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new Invalid(`The ${what} must be a whole number from 1 to ${max.toLocaleString('en')}, or blank.`);
  return value;
}

/**
 * Guest upload links (`/u/<token>`): people without an account upload into the link's owner's
 * gallery, straight to the bucket as any upload, within what the owner allowed (files and bytes
 * in all, a size a file, an expiry) and the owner's quota. A link's limits are checked when a
 * policy is signed (with what its unfinished uploads could still write) and again, atomically,
 * when each file completes (see uploads.ts); a revoked or expired link, or one whose owner can no
 * longer upload, signs and completes nothing.
 */
export function createGuestLinks(deps: {
  database: AppDb;
  audit: Audit;
  users: Users;
  images: Images;
  uploads: Uploads;
  clock: Clock;
  devices: DeviceTokens;
  maxUploadBytes: number;
  enabled: boolean;
}) {
  const { database, audit, users, images, uploads, clock, devices } = deps;
  const links = guestLinksRepository(database);
  const albums = albumsRepository(database);
  // Wrong passwords, as for share links: per link and address, and per link with growing waits.
  const guessesByLinkAndIp = createRateLimit({
    ...SHARE_GUESS_LIMITS.perLinkAndIp,
    database,
    clock,
    scope: 'guest.link_ip',
  });
  const guessesByLink = createBackoff({
    ...SHARE_GUESS_LIMITS.perLink,
    database,
    clock,
    scope: 'guest.link',
  });
  const imageRows = imagesRepository(database);
  const pendingRows = pendingUploadsRepository(database);
  const visitsByAddress = createRateLimit({
    limit: GUEST_VISITS_PER_HOUR,
    windowMs: 60 * 60 * 1000,
    database,
    clock,
    scope: 'guest.visit_ip',
  });
  const filesByAddress = createRateLimit({
    limit: GUEST_FILES_PER_HOUR,
    windowMs: 60 * 60 * 1000,
    database,
    clock,
    scope: 'guest.file_ip',
  });

  const toLink = (r: GuestLinkRow): GuestLink => ({
    id: r.id,
    ownerId: r.owner_id,
    ownerEmail: r.owner_email,
    label: r.label,
    message: r.message,
    maxFiles: r.max_files,
    maxBytes: r.max_bytes,
    maxFileBytes: Math.min(r.max_file_bytes ?? deps.maxUploadBytes, deps.maxUploadBytes),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
    filesAccepted: r.files_accepted,
    bytesAccepted: r.bytes_accepted,
    hasPassword: r.password_hash !== null,
    albumId: r.album_id,
    albumName: r.album_name,
    askName: r.ask_name === 1,
    notifyOwner: r.notify_owner === 1,
  });

  /** Whether a link of this owner takes uploads: not when disabled, or no longer able to upload (a viewer). */
  const mayTakeFor = (owner: User | null): owner is User =>
    owner !== null && !owner.isDisabled && can(owner, 'image.upload');

  const hasExpired = (link: GuestLink) => link.expiresAt !== null && link.expiresAt <= clock();

  function stateOf(link: GuestLink): GuestLinkState {
    if (link.revokedAt !== null) return 'revoked';
    if (hasExpired(link)) return 'expired';
    if (link.filesAccepted >= link.maxFiles || link.bytesAccepted >= link.maxBytes) return 'full';
    return 'active';
  }

  function requireEnabled() {
    if (!deps.enabled) throw new Gone('Guest upload links are turned off on this server.');
  }

  /** The link a token opens and its owner, if it takes uploads now: NotFound or Gone (why) otherwise. */
  async function openLink(token: string): Promise<{ link: GuestLink; owner: User; row: GuestLinkRow }> {
    requireEnabled();
    const row = /^[a-z2-7]{16,64}$/.test(token) ? await links.byTokenHash(sha256Hex(token)) : undefined;
    if (!row) throw new NotFound('There is no upload link at this address. Check that it was copied whole.');
    const link = toLink(row);
    const state = stateOf(link);
    if (state === 'revoked') throw new Gone('This upload link was turned off by the person who made it.');
    if (state === 'expired')
      throw new Gone('This upload link has expired. Ask the person who sent it for a new one.');
    const owner = await users.get(link.ownerId);
    if (!mayTakeFor(owner)) throw new Gone('This upload link is no longer available.');
    return { link, owner, row };
  }

  /** Thumbnails of images a link brought (signed as the gallery's are; null until ready). */
  function cards(rows: ImageRow[]): Promise<VisitImage[]> {
    return Promise.all(
      rows.map(async (r) => ({
        id: r.id,
        title: r.title,
        state: r.state,
        guestName: r.guest_name,
        thumbUrl: r.state === 'ready' ? await images.thumbUrl(r.thumb_key) : null,
      })),
    );
  }

  /** The visit's id as stored: the cookie's hash (a leaked database row cannot be replayed as a cookie). */
  const visitOf = (cookie: string) => sha256Hex(`guest visit ${cookie}`);

  /** What a browser's pass names: the link, and the visit that gave its password. */
  const passSubject = (linkId: string, cookie: string) => `guest:${linkId}:${visitOf(cookie)}`;

  /** The link, open to this visit: one with a password only for a visit that gave it. */
  async function openFor(visit: Pick<GuestVisit, 'token' | 'cookie' | 'pass'>) {
    const opened = await openLink(visit.token);
    if (opened.row.password_hash !== null) {
      const ok =
        visit.cookie && (await devices.verify(visit.pass, passSubject(opened.link.id, visit.cookie)));
      if (!ok) throw new Unauthenticated('This link asks for a password.');
    }
    return opened;
  }

  /** The link and owner of an upload this visit started through this link; NotFound for any other key. */
  async function visitsUpload(visit: GuestVisit, key: string): Promise<{ link: GuestLink; owner: User }> {
    const opened = await openFor(visit);
    const row = isStorableKey(key) ? await pendingRows.get(uploadKeyOf(key)) : undefined;
    if (
      !row ||
      row.guestLinkId !== opened.link.id ||
      !visit.cookie ||
      row.guestVisit !== visitOf(visit.cookie)
    )
      throw new NotFound('That upload was not found. It may have expired: please upload again.');
    return opened;
  }

  /** Refuses one more live link (in use: not turned off, not expired) to an owner who has the most. */
  async function requireRoomForLink(ownerId: string, now: number): Promise<void> {
    if ((await links.countLive(ownerId, now)) >= MAX_LIVE_GUEST_LINKS)
      throw new TooLarge(
        `There are ${MAX_LIVE_GUEST_LINKS} upload links of this account in use. Turn some off first.`,
      );
  }

  /**
   * Links as their owners' pages list them: each with its state, and whether it may be turned on
   * again (turned off, not expired since, and its owner able to upload).
   */
  async function listingsOf(list: GuestLink[]): Promise<GuestLinkListing[]> {
    const ownersMay = new Map<string, boolean>();
    for (const ownerId of new Set(list.map((link) => link.ownerId)))
      ownersMay.set(ownerId, mayTakeFor(await users.get(ownerId)));
    return list.map((link) => listingOf(link, ownersMay.get(link.ownerId) === true));
  }

  /** `ownerMayTake`: whether the link's owner may take uploads (mayTakeFor). */
  function listingOf(link: GuestLink, ownerMayTake: boolean): GuestLinkListing {
    return {
      link,
      state: stateOf(link),
      canTurnOn: link.revokedAt !== null && !hasExpired(link) && ownerMayTake,
    };
  }

  async function ownedLink(user: User, id: string): Promise<GuestLink> {
    const row = await links.byId(id);
    if (!row || !can(user, 'share.revoke', { ownerId: row.owner_id }))
      throw new NotFound('There is no such link.');
    return toLink(row);
  }

  return {
    listingsOf,

    isEnabled: () => deps.enabled,

    /** A new link; its token is returned once (only its hash is kept). */
    async create(actor: Actor, o: GuestLinkOptions): Promise<{ token: string; link: GuestLink }> {
      requireEnabled();
      if (!can(actor.user, 'share.create')) throw new Forbidden('Viewers cannot make upload links.');
      const label = cleanText(o.label, GUEST_LABEL_MAX);
      if (!label) throw new Invalid('Give the link a label, so you know its uploads when they come.');
      const message = o.message.trim().slice(0, GUEST_MESSAGE_MAX);
      const maxFiles = limitOf(o.maxFiles, 'number of files', MAX_GUEST_FILES, 100);
      const maxBytes = limitOf(o.maxMib, 'total size in MiB', MAX_GUEST_MIB, 10 * 1024) * MiB;
      const uploadMib = Math.floor(deps.maxUploadBytes / MiB);
      const fileMib =
        o.maxFileMib.trim() === ''
          ? null
          : limitOf(o.maxFileMib, 'size a file in MiB', Math.max(1, uploadMib), 1);
      const password = o.password ?? '';
      if (password && (password.length < SHARE_PASSWORD_MIN || password.length > PASSWORD_MAX))
        throw new Invalid(
          `A link password needs ${SHARE_PASSWORD_MIN} to ${PASSWORD_MAX} characters, or leave it blank.`,
        );
      const albumId = o.albumId?.trim() || null;
      if (albumId !== null) {
        const album = await albums.byId(albumId);
        if (!album || album.owner_id !== actor.user.id)
          throw new Invalid('Choose one of your albums, or none.');
      }
      const passwordHash = password ? await hashPassword(password) : null;
      const ms = SHARE_EXPIRIES[o.expiry].ms;
      const token = randomToken(20);
      const id = randomToken();
      const now = clock();
      await database.transaction(async () => {
        await requireRoomForLink(actor.user.id, now);
        await links.insert({
          id,
          owner_id: actor.user.id,
          token_hash: sha256Hex(token),
          label,
          message,
          max_files: maxFiles,
          max_bytes: maxBytes,
          max_file_bytes: fileMib === null ? null : fileMib * MiB,
          password_hash: passwordHash,
          album_id: albumId,
          ask_name: o.askName ? 1 : 0,
          notify_owner: o.notifyOwner === false ? 0 : 1,
          created_at: now,
          expires_at: ms === null ? null : now + ms,
          revoked_at: null,
          last_used_at: null,
        });
        await audit.change(actor, 'guest_link_create', {
          target: id,
          detail: `“${label}”; ${maxFiles} files, ${formatBytes(maxBytes)}; expires ${ms === null ? 'never' : new Date(now + ms).toISOString()}${passwordHash ? '; password' : ''}${albumId ? `; album ${albumId}` : ''}`,
        });
      });
      const row = await links.byId(id);
      if (!row) throw new NotFound('The link was not saved.');
      return { token, link: toLink(row) };
    },

    /** The links a person made, newest first; an admin's `everyone` lists all of them. */
    async list(user: User, o: { everyone?: boolean } = {}): Promise<GuestLink[]> {
      const all = o.everyone === true && can(user, 'admin');
      return (await links.list(all ? null : user.id, 500)).map(toLink);
    },

    get: ownedLink,

    /** A link's label, for the images it brought (null once it is gone). */
    async labelOf(id: string): Promise<string | null> {
      return (await links.byId(id))?.label ?? null;
    },

    /** Whether `token` is the token of this user's link `id` (the new-link page shows only one's own). */
    async isOwnNewLink(user: User, id: string, token: string): Promise<boolean> {
      const row = await links.byId(id);
      return row !== undefined && row.owner_id === user.id && row.token_hash === sha256Hex(token);
    },

    async revoke(actor: Actor, id: string): Promise<void> {
      const link = await ownedLink(actor.user, id);
      await database.transaction(async () => {
        if (!(await links.revoke(link.id, clock()))) return;
        await audit.change(actor, 'guest_link_revoke', { target: link.id, detail: `“${link.label}”` });
      });
    },

    /**
     * Turns a link that was turned off on again, at the same address, with what it took so far
     * still counted: not once it has expired (a new link is the way then), nor past the most
     * links an owner may have in use, nor for an owner who may not upload (disabled, or made a
     * viewer), whose links take nothing. Whether it was turned on: a link in use already (or turned
     * on meanwhile) is left as it is.
     */
    async turnOn(actor: Actor, id: string): Promise<boolean> {
      requireEnabled();
      if (!can(actor.user, 'share.create')) throw new Forbidden('Viewers cannot turn upload links on.');
      const link = await ownedLink(actor.user, id);
      if (hasExpired(link)) throw new Invalid('This link has expired: make a new one.');
      if (link.revokedAt === null) return false;
      return database.transaction(async () => {
        // In the transaction, so an owner disabled meanwhile is seen.
        if (!mayTakeFor(await users.get(link.ownerId)))
          throw new Invalid('The person who made this link cannot upload now, so it would take nothing.');
        await requireRoomForLink(link.ownerId, clock());
        if (!(await links.reopen(link.id))) return false;
        await audit.change(actor, 'guest_link_turn_on', { target: link.id, detail: `“${link.label}”` });
        return true;
      });
    },

    /** The link as its guest page shows it: NotFound or Gone when it takes nothing now. */
    async open(token: string): Promise<GuestLink> {
      return (await openLink(token)).link;
    },

    /** Whether this visit may upload through the link now (gave its password, when it has one). */
    async isOpenTo(visit: Pick<GuestVisit, 'token' | 'cookie' | 'pass'>): Promise<boolean> {
      return openFor(visit).then(
        () => true,
        (err: unknown) => {
          if (err instanceof Unauthenticated) return false;
          throw err;
        },
      );
    },

    /**
     * Checks the link's password for this visit: a pass for its cookie (the browser keeps it), or
     * Unauthenticated; wrong guesses throttled per link and address, and per link with growing waits.
     */
    async unlock(visit: Pick<GuestVisit, 'token' | 'cookie' | 'ip'>, password: string): Promise<string> {
      const { link, row } = await openLink(visit.token);
      if (row.password_hash === null || !visit.cookie) throw new Invalid('Open the link’s page first.');
      const counters = [
        { throttle: guessesByLinkAndIp, key: `${link.id} ${addressKey(visit.ip)}` },
        { throttle: guessesByLink, key: link.id },
      ];
      await charge(database, counters, 'Too many wrong passwords for this link.');
      if (!(await verifyPassword(row.password_hash, password.slice(0, PASSWORD_MAX))))
        throw new Unauthenticated('That is not the password of this link.');
      for (const c of counters) await c.throttle.forgive(c.key);
      return devices.issue(passSubject(link.id, visit.cookie));
    },

    /**
     * A new visit of the link from this address (its page sets the visit's cookie): refused beyond
     * GUEST_VISITS_PER_HOUR per address, and for a link that takes nothing now.
     */
    async startVisit(token: string, ip: string): Promise<void> {
      const { link } = await openLink(token);
      await charge(
        database,
        [{ throttle: visitsByAddress, key: `${link.id} ${addressKey(ip)}` }],
        'Too many new visits of this link from your address.',
      );
    },

    /**
     * A policy for one guest file (or the visit's page form, one exact key, titled with the link's
     * label), under the owner's prefix, within the link's limits; the script's files at most
     * GUEST_FILES_PER_HOUR per address and link.
     */
    async presign(
      visit: GuestVisit,
      req: { from: 'form' | 'script'; name?: string; size?: number; redirectTo?: string; formKey?: string },
    ): Promise<PresignedUpload> {
      const { link, owner } = await openFor(visit);
      // A visit is what tells one guest's uploads from another's: no cookie, no upload.
      if (!visit.cookie)
        throw new Invalid('Open the link’s page first (it needs a cookie to tell your uploads).');
      if (stateOf(link) === 'full') throw new TooLarge('This link takes no more files.');
      const name = cleanText(visit.name ?? '', GUEST_NAME_MAX);
      if (link.askName && !name) throw new Invalid('Give your name first, so the owner knows who sent what.');
      if (req.from === 'script') {
        await charge(
          database,
          [{ throttle: filesByAddress, key: `${link.id} ${addressKey(visit.ip)}` }],
          'Too many uploads from your address through this link.',
        );
      }
      return uploads.presign(owner, {
        from: req.from,
        // A plain form's key is exact (no name in it): its file is named for the link.
        originalName: req.from === 'form' ? link.label : (req.name ?? ''),
        ...(req.size !== undefined ? { size: req.size } : {}),
        ...(req.redirectTo !== undefined ? { redirectTo: req.redirectTo } : {}),
        ...(req.formKey !== undefined ? { formKey: req.formKey } : {}),
        guest: { linkId: link.id, visit: visitOf(visit.cookie), name: link.askName ? name : null },
      });
    },

    /** Completes a file this visit uploaded through the link: it lands in the owner's gallery. */
    async complete(visit: GuestVisit, key: string, etag?: string): Promise<Completion> {
      const { owner } = await visitsUpload(visit, key);
      return uploads.complete(owner, key, etag ? { etag } : {});
    },

    /** Gives up an upload of this visit (its Cancel, or a Retry under a fresh policy). */
    async abandon(visit: GuestVisit, key: string): Promise<void> {
      const { owner } = await visitsUpload(visit, key);
      await uploads.abandon(owner, key);
    },

    /** What this visit uploaded through the link (kept, and not deleted since), newest first. */
    async visitImages(visit: Pick<GuestVisit, 'token' | 'cookie' | 'pass'>): Promise<VisitImage[]> {
      const { link } = await openFor(visit);
      return cards(await imageRows.ofGuestLink(link.id, visitOf(visit.cookie), VISIT_IMAGES));
    },

    /** What a link brought, newest first (its owner's, or an admin's view), with who sent each. */
    async imagesOf(user: User, id: string): Promise<{ listing: GuestLinkListing; images: VisitImage[] }> {
      const link = await ownedLink(user, id);
      return {
        listing: listingOf(link, mayTakeFor(await users.get(link.ownerId))),
        images: await cards(await imageRows.ofGuestLink(link.id, null, LINK_IMAGES)),
      };
    },
  };
}
