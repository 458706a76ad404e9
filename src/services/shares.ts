import type { AppDb } from '../db/database.js';
import { albumImagesRepository } from '../db/repositories/album-images.js';
import type { ImagePosition } from '../db/repositories/images.js';
import { shareLinkImagesRepository } from '../db/repositories/share-link-images.js';
import { type ShareLinkRow, shareLinksRepository } from '../db/repositories/share-links.js';
import { fileTypeLabel, isImageType } from '../image-types.js';
import { PASSWORD_MAX, SHARE_PASSWORD_MIN } from '../limits.js';
import { can } from '../policy.js';
import type { Storage } from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import { imageCursor, writeCursor } from './cursors.js';
import type { DeviceTokens } from './device-tokens.js';
import { Gone, Invalid, NotFound, Unauthenticated } from './errors.js';
import { downloadName, type Image, type Images, rowToImage } from './images.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { addressKey, type BackoffLimits, charge, createBackoff, createRateLimit } from './rate-limit.js';
import type { ShareCopies } from './share-copies.js';
import { shareCopyType } from './thumbnails.js';
import { randomToken, sha256Hex } from './tokens.js';
import type { User } from './users.js';

const HOUR_MS = 60 * 60 * 1000;
export const SHARE_EXPIRIES = {
  '1h': { label: '1 hour', ms: HOUR_MS },
  '1d': { label: '1 day', ms: 24 * HOUR_MS },
  '7d': { label: '7 days', ms: 7 * 24 * HOUR_MS },
  '30d': { label: '30 days', ms: 30 * 24 * HOUR_MS },
  never: { label: 'Never', ms: null },
} as const;
export type ShareExpiry = keyof typeof SHARE_EXPIRIES;
const MAX_SHARED_IMAGES = 200;
/** An album link's page: its images come 60 at a time, the next ones as the visitor scrolls. */
const ALBUM_PAGE = 60;
/** Presigned URLs on the public page: long enough to look at, short enough that a copied URL dies. */
const PUBLIC_URL_TTL_SECONDS = 10 * 60;
const MINUTE_MS = 60 * 1000;
/**
 * Guessing a link's password, as for logins: a browser that opened the link before is throttled
 * on its own; anyone else per (link, address) and per link with growing delays. A stranger's
 * guesses never lock out the recipient's browser or another address; a link gets at most 55
 * guesses in a first day, then 24 a day.
 */
export const SHARE_GUESS_LIMITS = {
  perLinkAndIp: { limit: 10, windowMs: 15 * MINUTE_MS },
  perLink: { freeFailures: 20, forgetOneMs: HOUR_MS, firstDelayMs: 1000, maxDelayMs: HOUR_MS },
  perDevice: { freeFailures: 10, forgetOneMs: HOUR_MS, firstDelayMs: 1000, maxDelayMs: HOUR_MS },
} satisfies Record<string, { limit: number; windowMs: number } | BackoffLimits>;

export interface ShareLink {
  id: string;
  ownerId: string;
  hasPassword: boolean;
  allowDownload: boolean;
  /** downloads are the original file (camera data and location included), not a copy without them */
  downloadOriginal: boolean;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  viewCount: number;
  lastViewedAt: number | null;
  imageCount: number;
  firstTitle: string | null;
  /** an album's link: it shows what the album holds when opened (null otherwise, or once deleted) */
  albumId: string | null;
  albumName: string | null;
}

export type ShareState = 'active' | 'expired' | 'revoked';

const rowToLink = (r: ShareLinkRow): ShareLink => ({
  id: r.id,
  ownerId: r.owner_id,
  hasPassword: r.password_hash !== null,
  allowDownload: r.allow_download === 1,
  downloadOriginal: r.download_original === 1,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  viewCount: r.view_count,
  lastViewedAt: r.last_viewed_at,
  imageCount: r.image_count,
  firstTitle: r.first_title,
  albumId: r.album_id,
  albumName: r.album_name,
});

type PendingImageFields = Pick<Image, 'title' | 'state' | 'failure' | 'placeholder'>;

export interface SharedView {
  link: ShareLink;
  /** the album's name, when the link shows an album */
  albumName?: string;
  images: (PendingImageFields & {
    id: string;
    width: number;
    height: number;
    /** null until the image is ready */
    url: string | null;
    /** the original (presigned), or this app's address that makes and gives the copy without location */
    downloadUrl?: string;
    /** set for a file that is not one of our image types (ACCEPT=any): shown as a file card */
    file: { label: string; bytes: number } | null;
  })[];
  /** an album link's count of all its images, when the page shows only some */
  albumCount?: number;
  /** the cursor of an album link's next page (null: nothing after these) */
  nextCursor: string | null;
}

/** What a link lets visitors download, as its options say it. */
export interface DownloadOption {
  allowDownload: boolean;
  /** the original file rather than a full-size copy without location (the default) */
  original?: boolean;
}

/** The audit row's words for a link's downloads. */
const downloadDetail = (opts: DownloadOption) =>
  opts.allowDownload ? (opts.original ? '; download original' : '; download') : '';

export type OpenResult =
  | { kind: 'needs-password'; link: ShareLink }
  /**
   * deviceToken: after a right password, marks this browser as the link's known visitor; further:
   * a further page of an album link (not a new opening)
   */
  | { kind: 'view'; view: SharedView; deviceToken?: string; further?: true };

export function parseExpiry(input: string | undefined): ShareExpiry {
  if (input && Object.hasOwn(SHARE_EXPIRIES, input)) return input as ShareExpiry;
  throw new Invalid('Choose when the link expires.');
}

export function createShares(deps: {
  database: AppDb;
  storage: Storage;
  audit: Audit;
  images: Images;
  devices: DeviceTokens;
  copies: ShareCopies;
  clock: Clock;
}) {
  const { database, storage, audit, images, devices, copies, clock } = deps;
  const links = shareLinksRepository(database);
  const linkImages = shareLinkImagesRepository(database);
  const albumImages = albumImagesRepository(database);
  const guessesByLinkAndIp = createRateLimit({
    ...SHARE_GUESS_LIMITS.perLinkAndIp,
    database,
    clock,
    scope: 'share.link_ip',
  });
  const guessesByLink = createBackoff({
    ...SHARE_GUESS_LIMITS.perLink,
    database,
    clock,
    scope: 'share.link',
  });
  const guessesByDevice = createBackoff({
    ...SHARE_GUESS_LIMITS.perDevice,
    database,
    clock,
    scope: 'share.device',
  });

  function stateOf(link: Pick<ShareLink, 'revokedAt' | 'expiresAt'>): ShareState {
    if (link.revokedAt !== null) return 'revoked';
    if (link.expiresAt !== null && link.expiresAt <= clock()) return 'expired';
    return 'active';
  }

  /** A link's optional password, checked and hashed; null when left blank. */
  async function linkPasswordHash(password = ''): Promise<string | null> {
    if (password && (password.length < SHARE_PASSWORD_MIN || password.length > PASSWORD_MAX)) {
      throw new Invalid(
        `A link password needs ${SHARE_PASSWORD_MIN} to ${PASSWORD_MAX} characters, or leave it blank.`,
      );
    }
    return password ? hashPassword(password) : null;
  }

  async function ownedLink(user: User, id: string): Promise<ShareLink> {
    const row = await links.byId(id);
    if (!row || !can(user, 'share.revoke', { ownerId: row.owner_id }))
      throw new NotFound('There is no such link.');
    return rowToLink(row);
  }

  /**
   * What the link shows now: a page of an album's ready images (those added later too) with the
   * album's count and the position of the last one when more follow, or all the images chosen.
   */
  async function imagesOf(
    link: ShareLink,
    after: ImagePosition | null,
  ): Promise<{ list: Image[]; albumCount?: number; next: ImagePosition | null }> {
    if (link.albumId !== null) {
      const rows = await albumImages.readyImages(link.albumId, after, ALBUM_PAGE + 1);
      const list = rows.slice(0, ALBUM_PAGE).map(rowToImage);
      const last = list.at(-1);
      return {
        list,
        albumCount: await albumImages.readyCount(link.albumId),
        next: rows.length > ALBUM_PAGE && last ? { sort: last.createdAt, id: last.id } : null,
      };
    }
    const list = (await linkImages.imagesOf(link.id)).map(rowToImage);
    // An album link whose album was deleted has no images of its own either.
    if (list.length === 0) throw new Gone('The images behind this link were deleted.');
    return { list, next: null };
  }

  /** One of the images the link shows now, if it is one (on any page of an album's). */
  async function imageOf(link: ShareLink, imageId: string): Promise<Image | undefined> {
    if (link.albumId !== null) {
      const row = await albumImages.readyImage(link.albumId, imageId);
      return row ? rowToImage(row) : undefined;
    }
    return (await imagesOf(link, null)).list.find((i) => i.id === imageId);
  }

  /** The link a token opens, if it is in force: NotFound or Gone (with the reason) otherwise. */
  async function activeLink(token: string): Promise<{ row: ShareLinkRow; link: ShareLink }> {
    const row = /^[a-z2-7]{16,64}$/.test(token) ? await links.byTokenHash(sha256Hex(token)) : undefined;
    if (!row) throw new NotFound('There is no shared link at this address. Check that it was copied whole.');
    const link = rowToLink(row);
    const state = stateOf(link);
    if (state !== 'active') {
      throw new Gone(
        state === 'revoked'
          ? 'This link was turned off by the person who shared it.'
          : 'This link has expired. Ask the person who shared it for a new one.',
      );
    }
    if (row.owner_disabled === 1) throw new Gone('This link is no longer available.');
    return { row, link };
  }

  /** The link's images as its page shows them; `token` makes the addresses of share copies. */
  async function view(
    link: ShareLink,
    token: string,
    after: ImagePosition | null = null,
  ): Promise<SharedView> {
    const { list, albumCount, next } = await imagesOf(link, after);
    return {
      link,
      ...(link.albumName !== null ? { albumName: link.albumName } : {}),
      ...(albumCount !== undefined ? { albumCount } : {}),
      nextCursor: next ? writeCursor(imageCursor, { order: 'uploaded', ...next }) : null,
      images: await Promise.all(
        list.map(async (image: Image) => {
          // Any other file has no copies: no picture, and no copy without location to download
          // (its original only, on a link that gives originals).
          const file = isImageType(image.contentType)
            ? null
            : { label: fileTypeLabel(image.contentType, image.originalName), bytes: image.bytes };
          return {
            id: image.id,
            file,
            title: image.title,
            width: image.width,
            height: image.height,
            state: image.state,
            failure: null, // why it failed is for its owner
            placeholder: image.placeholder,
            url:
              image.state === 'ready' && !file
                ? await storage.presignGet({
                    key: image.displayKey,
                    ttlSeconds: PUBLIC_URL_TTL_SECONDS,
                    contentType: 'image/webp',
                  })
                : null,
            ...(link.allowDownload && image.isStored && (!file || link.downloadOriginal)
              ? {
                  downloadUrl: link.downloadOriginal
                    ? await storage.presignGet({
                        key: image.originalKey,
                        ttlSeconds: PUBLIC_URL_TTL_SECONDS,
                        download: downloadName(image),
                        contentType: image.contentType,
                      })
                    : `/s/${token}/download/${image.id}`,
                }
              : {}),
          };
        }),
      ),
    };
  }

  return {
    stateOf,

    /**
     * A link to an album the caller has checked the actor may share: it shows the album's ready
     * images as they are when opened. Returns the token once, as create does.
     */
    async createForAlbum(
      actor: Actor,
      album: { id: string; name: string },
      opts: { expiry: ShareExpiry; password?: string } & DownloadOption,
    ): Promise<{ token: string; link: ShareLink }> {
      const passwordHash = await linkPasswordHash(opts.password);
      const token = randomToken(20);
      const id = randomToken();
      const now = clock();
      const ms = SHARE_EXPIRIES[opts.expiry].ms;
      const expiresAt = ms === null ? null : now + ms;
      await database.transaction(async () => {
        await links.insert({
          id,
          token_hash: sha256Hex(token),
          owner_id: actor.user.id,
          password_hash: passwordHash,
          allow_download: opts.allowDownload ? 1 : 0,
          download_original: opts.allowDownload && opts.original ? 1 : 0,
          created_at: now,
          expires_at: expiresAt,
          album_id: album.id,
        });
        const expires = expiresAt === null ? 'never' : new Date(expiresAt).toISOString();
        await audit.change(actor, 'album_share', {
          target: id,
          detail: `album ${album.id} “${album.name}”; expires ${expires}${passwordHash ? '; password' : ''}${downloadDetail(opts)}`,
        });
      });
      const row = await links.byId(id);
      if (!row) throw new NotFound('There is no such link.');
      return { token, link: rowToLink(row) };
    },

    /** The links showing an album, newest first. */
    async listForAlbum(albumId: string): Promise<ShareLink[]> {
      return (await links.listByAlbum(albumId)).map(rowToLink);
    },

    /** Returns the token once: only its hash is kept, so it cannot be shown again. */
    async create(
      actor: Actor,
      imageIds: string[],
      opts: { expiry: ShareExpiry; password?: string } & DownloadOption,
    ): Promise<{ token: string; link: ShareLink }> {
      const ids = [...new Set(imageIds)];
      if (ids.length === 0) throw new Invalid('Select the images to share first.');
      if (ids.length > MAX_SHARED_IMAGES)
        throw new Invalid(`A link can share at most ${MAX_SHARED_IMAGES} images.`);
      const { user } = actor;
      await images.getAllForChange(user, ids);
      const passwordHash = await linkPasswordHash(opts.password);
      const token = randomToken(20);
      const id = randomToken();
      const now = clock();
      const ms = SHARE_EXPIRIES[opts.expiry].ms;
      const expiresAt = ms === null ? null : now + ms;
      await database.transaction(async () => {
        await links.insert({
          id,
          token_hash: sha256Hex(token),
          owner_id: user.id,
          password_hash: passwordHash,
          allow_download: opts.allowDownload ? 1 : 0,
          download_original: opts.allowDownload && opts.original ? 1 : 0,
          created_at: now,
          expires_at: expiresAt,
        });
        await linkImages.insert(id, ids);
        const expires = expiresAt === null ? 'never' : new Date(expiresAt).toISOString();
        await audit.change(actor, 'share_create', {
          target: id,
          detail: `${ids.length} image(s): ${ids.slice(0, 20).join(' ')}; expires ${expires}${passwordHash ? '; password' : ''}${downloadDetail(opts)}`,
        });
      });
      const row = await links.byId(id);
      if (!row) throw new NotFound('There is no such link.'); // deleted at once, with its images
      return { token, link: rowToLink(row) };
    },

    /**
     * Whether `token` is that of the user's link `id`, still in force: the one check before a page
     * shows a link it was handed back (see src/routes/new-link.ts), so no one else's token, and no
     * made-up one, is ever shown as the user's.
     */
    async isOwnNewLink(user: User, id: string, token: string): Promise<boolean> {
      if (!/^[a-z2-7]{16,64}$/.test(token) || id.length === 0 || id.length > 64) return false;
      const row = await links.byId(id);
      return (
        row !== undefined &&
        row.owner_id === user.id &&
        row.revoked_at === null &&
        row.token_hash === sha256Hex(token)
      );
    },

    async listForOwner(user: User): Promise<ShareLink[]> {
      return (await links.listByOwner(user.id)).map(rowToLink);
    },

    async listForImage(image: Image): Promise<ShareLink[]> {
      return (await links.listByImage(image.id)).map(rowToLink);
    },

    async revoke(actor: Actor, id: string): Promise<ShareLink> {
      const link = await ownedLink(actor.user, id);
      await database.transaction(async () => {
        await links.revoke(link.id, clock());
        await audit.change(actor, 'share_revoke', { target: link.id });
      });
      return link;
    },

    /**
     * What a visitor with the token sees. Unknown tokens are NotFound; revoked and expired links, and
     * links of a disabled account, Gone. A password-protected link asks first; each successful
     * opening counts as a view.
     */
    async open(
      token: string,
      password: string | undefined,
      visitor: { ip: string; deviceToken?: string | undefined },
      after: ImagePosition | null = null,
    ): Promise<OpenResult> {
      const { row, link } = await activeLink(token);
      if (after !== null) {
        if (link.albumId === null) throw new Invalid('This link has one page: open it without “cursor”.');
        // A further page of an album link, no new opening. A link with a password asks it of a
        // browser that has not given it (its device cookie says so), as its downloads do.
        const known =
          row.password_hash === null || (await devices.verify(visitor.deviceToken, `link:${link.id}`));
        if (!known) return { kind: 'needs-password', link };
        return { kind: 'view', view: await view(link, token, after), further: true };
      }
      if (row.password_hash === null) {
        const shown = await view(link, token);
        await links.countView(link.id, clock());
        return { kind: 'view', view: shown };
      }
      if (password === undefined) return { kind: 'needs-password', link };
      const device = await devices.verify(visitor.deviceToken, `link:${link.id}`);
      const counters = device
        ? [{ throttle: guessesByDevice, key: device }]
        : [
            { throttle: guessesByLinkAndIp, key: `${link.id}\n${addressKey(visitor.ip)}` },
            { throttle: guessesByLink, key: link.id },
          ];
      await charge(database, counters, 'Too many wrong passwords for this link.');
      if (password.length > PASSWORD_MAX || !(await verifyPassword(row.password_hash, password))) {
        throw new Unauthenticated('That password is not right.');
      }
      if (device) await guessesByDevice.reset(device);
      else {
        await guessesByLinkAndIp.reset(`${link.id}\n${addressKey(visitor.ip)}`);
        await guessesByLink.forgive(link.id);
      }
      const shown = await view(link, token);
      await links.countView(link.id, clock());
      return { kind: 'view', view: shown, deviceToken: await devices.issue(`link:${link.id}`) };
    },

    /**
     * A short-lived download link of one of the link's pictures as a full-size copy without
     * location, made on its first download and kept (a link that gives originals has its own). A
     * link with a password asks it of a browser that has not given it (its device cookie says so).
     */
    async downloadCopy(token: string, imageId: string, visitor: { deviceToken?: string | undefined }) {
      const { row, link } = await activeLink(token);
      if (row.password_hash !== null && !(await devices.verify(visitor.deviceToken, `link:${link.id}`)))
        throw new Unauthenticated('Open the link and give its password first.');
      const image = link.allowDownload && !link.downloadOriginal ? await imageOf(link, imageId) : undefined;
      if (!image?.isStored || !isImageType(image.contentType))
        throw new NotFound('This link has no such download.');
      const contentType = shareCopyType(image.contentType);
      const url = await storage.presignGet({
        key: await copies.keyOf(image),
        ttlSeconds: 5 * 60,
        download: downloadName({ ...image, contentType }),
        contentType,
      });
      return { url, linkId: link.id };
    },
  };
}
export type Shares = ReturnType<typeof createShares>;
