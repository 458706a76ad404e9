import { randomUUID } from 'node:crypto';
import type { AppDb } from '../db/database.js';
import { albumImagesRepository } from '../db/repositories/album-images.js';
import { guestLinksRepository } from '../db/repositories/guest-links.js';
import { imagesRepository } from '../db/repositories/images.js';
import { jobsRepository } from '../db/repositories/jobs.js';
import { formatBytes } from '../format.js';
import { ACCEPTED_NAMES, isImageType } from '../image-types.js';
import type { OriginalStore } from '../jobs/original-store.js';
import { JobFailed, MAX_ATTEMPTS } from '../jobs/queue.js';
import { TITLE_MAX } from '../limits.js';
import { can } from '../policy.js';
import {
  bareEtag,
  isStorableKey,
  type ObjectInfo,
  SCRIPT_ANSWER,
  SourceChanged,
  type Storage,
} from '../storage/storage.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import {
  Conflict,
  DomainError,
  Forbidden,
  fromStorage,
  Gone,
  Invalid,
  NotFound,
  Throttled,
  TooLarge,
  Unavailable,
  UnsupportedType,
} from './errors.js';
import { cleanText, type Images, rowToImage, withoutExtension } from './images.js';
import type { Notifications } from './notifications.js';
import {
  FILENAME_PLACEHOLDER,
  isPrefixUpload,
  type PendingUpload,
  type PendingUploads,
  POLICY_TTL_SECONDS,
  SCRIPT_FILE_NAME,
  uploadKeyOf,
} from './pending-uploads.js';
import { tryAgainIn } from './rate-limit.js';
import { sniffKeptType, UNKNOWN_FILE_TYPE } from './sniff.js';
import { preloadImageModules, SNIFF_BYTES } from './thumbnails.js';
import { createUploadQuota } from './upload-quota.js';
import type { User, Users } from './users.js';

/**
 * Unfinished uploads with a valid policy a user may hold at once. A person uploads a few files at a
 * time (upload.js sends two at once); 20 bounds what one account can park in the bucket.
 */
export const MAX_OPEN_UPLOADS = 20;
/** How long visits of the upload page may keep re-signing its form, from its first signing. */
const FORM_LIFETIME_MS = 60 * 60 * 1000;
/** A visit re-signs the page's form only while this much of its lifetime is left. */
const FORM_MIN_LEFT_MS = 10 * 60 * 1000;
const NAME_MAX = 255;
const NOT_AN_IMAGE = `That file is not a ${ACCEPTED_NAMES} image, so it was not kept.`;
const EMPTY = 'That file is empty, so it was not kept.';
const NOT_FOUND = 'That upload was not found. It may have expired: please upload again.';
const SECOND_FILE =
  'Another file was sent with this upload form after its first one was kept, so it was not kept. Please upload it again.';
const REPLACED =
  'Another file was sent with this upload form (from another tab, say) before this one was kept, and took its place, so this one was not kept. Please upload it again.';

export interface PresignedUpload {
  key: string;
  url: string;
  fields: Record<string, string>;
}

export interface PresignRequest {
  /**
   * Who sends the file: the upload page's own form (the bucket sends the browser back to
   * /uploads/complete) or upload.js (the bucket answers it, and it asks for the completion).
   */
  from: 'form' | 'script';
  originalName?: string;
  replacesImageId?: string;
  /** the file's exact size: the policy then allows exactly that many bytes, and reserves no more */
  size?: number;
  /** the upload page's own staging key: upload.js's first file re-signs it instead of opening another */
  formKey?: string;
  /** not the page form other visits share if a file is stored under it (the bucket may keep one per form) */
  fresh?: boolean;
  /**
   * An upload through a guest link, for its owner (the `user`): the link's limits hold as well as
   * the owner's quota, and the page's form is that visit's own.
   */
  guest?: GuestUpload;
  /** where the bucket sends a plain form's browser once its file is stored (the guest page's own) */
  redirectTo?: string;
}

/** Who uploads through a guest link: the link, the visit (the hash of the guest's cookie), and their name. */
interface GuestUpload {
  linkId: string;
  visit: string;
  name: string | null;
}

const GUEST_QUOTA_FULL =
  'The gallery this link uploads to has no room for more files. Tell the person who sent you the link.';

/** An upload's row as reserved: its key, the bytes it may write, and how long what is signed for it may live. */
export interface Reservation {
  key: string;
  maxBytes: number;
  /** a row of its own (not the page's form, re-signed) */
  isNew: boolean;
  ttlSeconds: number;
}

export interface Completion {
  imageId: string;
  replaced: boolean;
  /** true when an earlier call already completed this key (the redirect GET may repeat) */
  isRepeat: boolean;
}

/** A guest link that took no more files (or was turned off) when one of its uploads completed. */
class LinkRefused extends Error {}
const GUEST_LINK_REFUSED =
  'This link took no more files (it is full, has expired or was turned off), so this one was not kept.';
/** A quota refusal of a guest's file speaks of the gallery, not of "your" quota. */
const guestWords = (row: { guestLinkId: string | null }, words: string) =>
  row.guestLinkId === null
    ? words
    : 'The gallery this link uploads to has no room for this file, so it was not kept.';

/** Policies name keys here; nothing under it is ever an image's object. */
const stagingPrefix = (userId: string) => `users/${userId}/uploads/`;
/** Images' originals: only completions write here, each to a fresh key no policy names. */
const originalsPrefix = (userId: string) => `users/${userId}/originals/`;

/**
 * Whose quota and prefix an upload goes to: a replacement's are the image owner's (an admin may
 * replace anyone's image, and must not move it into their own prefix, or deleting the admin's
 * account would delete it).
 */
const ownerIdOf = (user: User, replacing: { owner_id: string } | undefined) => replacing?.owner_id ?? user.id;

/**
 * A pending upload with the object being completed: its key, or for a plain form's prefix the
 * file the bucket stored under it by name.
 */
type StagedUpload = PendingUpload & { objectKey: string };

/** The staging object's first bytes and what the bucket said of the whole of it. */
type StagedStart = { bytes: Uint8Array; info: ObjectInfo };

/** The staging object read: `etag` names the version (bare), `copyIf` is it as the bucket spells it. */
interface StagedFile {
  start: StagedStart;
  etag: string;
  copyIf: string;
}

/** A file checked, ready to be recorded (its renditions are a job's, after the answer). */
interface Verified {
  size: number;
  contentType: string;
}

/** A file refused for good during completion: the row closes and the objects go. */
interface Refused {
  refused: TooLarge | UnsupportedType;
}

/**
 * The file's name: for a plain form's upload, the one the bucket put in its key (browsers send a
 * name's quotes and line breaks as %22, %0A and %0D, as HTML's form encoding says: a quote is put
 * back, a line break read as a space), unless
 * it is upload.js's file there, whose name upload.js gave; else the name the row was given.
 */
function fileNameOf(row: StagedUpload): string {
  if (!isPrefixUpload(row.key)) return row.originalName;
  const inKey = row.objectKey
    .slice(row.key.length)
    .replaceAll('%22', '"')
    .replace(/(%0D)?%0A|%0D/gi, ' ');
  if (inKey === SCRIPT_FILE_NAME && row.originalName) return row.originalName;
  return inKey || row.originalName;
}

export function createUploads(deps: {
  database: AppDb;
  storage: Storage;
  audit: Audit;
  images: Images;
  users: Users;
  notifications: Notifications;
  pending: PendingUploads;
  clock: Clock;
  maxUploadBytes: number;
  /** our image types only, or any file (kept as a file: no copies are made of it) */
  accept: 'images' | 'any';
  appOrigin: string;
  /** Tells the workers a job was added (src/jobs/queue.ts). */
  onJobAdded: () => void;
  /** Copies answered uploads' originals into place (their jobs wait for it). */
  originals: OriginalStore;
  /** GUEST_LINKS: off, no guest's file is kept */
  guestLinks: boolean;
}) {
  const { database, storage, audit, images, users, notifications, pending, clock, originals } = deps;
  const imageRows = imagesRepository(database);
  const jobs = jobsRepository(database);
  const guestRows = guestLinksRepository(database);
  const albumImages = albumImagesRepository(database);
  const quota = createUploadQuota({ users, images, pending });
  /**
   * Completions running in this process, with the ETag their caller named (if any), so a repeated
   * request for the same file waits for the same answer.
   */
  const inFlight = new Map<string, { work: Promise<Completion>; etag: string | null }>();

  /**
   * Ends a refused upload: its objects go and its row closes (a policy can still be replayed until
   * the row is swept), unless another completion holds the row now: then only our copies go.
   */
  async function refuse(
    row: StagedUpload,
    finalKey: string | null,
    err: DomainError,
    outside: boolean,
    etag: string | null = null,
  ): Promise<never> {
    const closed = await pending.close(row.key, finalKey, null, clock(), etag);
    if (closed && outside) await pending.remove(row.key);
    if (closed) await images.discardObjects([row.objectKey]);
    // A guest's refused file is the link's owner's to know of: it names the link, and why.
    if (closed && row.guestLinkId !== null) {
      const linkId = row.guestLinkId;
      await database.transaction(() =>
        audit.change(null, 'guest_upload_refused', { target: linkId, detail: err.message.slice(0, 300) }),
      );
    }
    throw err;
  }

  /**
   * The staging object's first bytes and what the bucket says of it, with the ETag that names this
   * version: the one the caller named (the bucket's redirect does), else the one there now.
   */
  async function readStaged(row: StagedUpload, named: string | null): Promise<StagedFile> {
    const start = await fromStorage(storage.readStart(row.objectKey, SNIFF_BYTES));
    if (!start) throw new Invalid('The file has not arrived in storage. Please upload it again.');
    const stagedEtag = start.info.etag ? bareEtag(start.info.etag) : null;
    // Another file took this one's place (a second tab's post through the same form): that one is
    // kept by its own completion, or by the sweep.
    if (named && stagedEtag && named !== stagedEtag) throw new Conflict(REPLACED);
    const etag = stagedEtag ?? named;
    // The job copies the file by its ETag: a bucket that names none cannot be trusted with this.
    if (etag === null) throw new Unavailable('The bucket did not say which version of the file it holds.');
    return { start, etag, copyIf: start.info.etag ?? etag };
  }

  /**
   * Checks the staging object from its first bytes and what the bucket said of it with them (one
   * version, one request): its size, the quota, and its type. The original is a copy of exactly this
   * version (pinned by its ETag) at a key no policy names; the renditions job decodes that copy.
   */
  async function verify(user: User, row: StagedUpload, staged: StagedFile): Promise<Verified | Refused> {
    const { size } = staged.start.info;
    if (size > deps.maxUploadBytes)
      return { refused: new TooLarge('That file is larger than the upload limit.') };
    if (size === 0) return { refused: new UnsupportedType(deps.accept === 'any' ? EMPTY : NOT_AN_IMAGE) };
    const replacing = row.replacesImageId ? await imageRows.get(row.replacesImageId) : undefined;
    // A cheap early answer; the transaction below checks again, and that check is the one that holds.
    const overQuota = await quota.refusal(ownerIdOf(user, replacing), size, replacing);
    if (overQuota) return { refused: new TooLarge(guestWords(row, overQuota)) };
    // A few files only tell further in (a TIFF whose directory sits at its end): read on, streaming,
    // the same version only (a replay meanwhile is refused as another file).
    const contentType = await fromStorage(
      sniffKeptType(storage, row.objectKey, staged.start, staged.copyIf).catch((err: unknown) => {
        throw err instanceof SourceChanged ? new Conflict(REPLACED) : err;
      }),
    );
    // Any other file is kept as a file (with the type its first bytes tell) when that is allowed.
    if (!isImageType(contentType) && deps.accept !== 'any')
      return { refused: new UnsupportedType(NOT_AN_IMAGE) };
    return { size, contentType };
  }

  /**
   * Completes the row with the file its caller names by ETag (the bucket's redirect does), else
   * with the file there now; either way the one whose ETag it records, so a later call can tell a
   * second file sent through the same form from a repeat.
   */
  async function completeOnce(
    user: User,
    row: StagedUpload,
    o: { outside: boolean; actor: Actor | undefined },
    named: string | null,
  ): Promise<Completion> {
    const { outside, actor } = o;
    if (!can(user, 'image.upload')) {
      return refuse(row, null, new Forbidden('Viewers cannot upload images.'), outside);
    }
    // A guest's file, completed after its link's owner was disabled or the feature turned off (by
    // the sweep, say): not kept. (The link's own state is checked where it is counted, below.)
    if (row.guestLinkId !== null && (user.isDisabled || !deps.guestLinks))
      return refuse(row, null, new Gone(GUEST_LINK_REFUSED), outside);
    const replacing = row.replacesImageId ? await imageRows.get(row.replacesImageId) : undefined;
    const ownerId = ownerIdOf(user, replacing);
    const base = `users/${ownerId}/`;
    const finalKey = `${originalsPrefix(ownerId)}${randomUUID()}`;
    if (!(await pending.claim(row.key, finalKey, clock()))) return repeatOf(user, row.key);

    const version = randomUUID();
    const renditionKeys = [`${base}thumbs/${version}.webp`, `${base}display/${version}.webp`];
    let staged: StagedFile;
    let verdict: Verified | Refused;
    try {
      staged = await readStaged(row, named);
      verdict = await verify(user, row, staged);
    } catch (err) {
      // Storage trouble, another file in its place, a crash of the sniffer: the row stays open for
      // a retry or the sweep.
      await pending.release(row.key, finalKey);
      throw err;
    }
    const { etag } = staged;
    if ('refused' in verdict) return refuse(row, finalKey, verdict.refused, outside, etag);
    const checked = verdict;
    // The upload page's own form is one key for all its tabs (even once upload.js has taken it
    // over): a second tab's file may land there right after the first is answered. Its original is
    // copied before the answer, so a refused copy is this completion's to report (and the other
    // file's completion may keep that one). Every other upload's key is its own: its copy follows
    // the answer (see below).
    const copiesFirst = row.isShared;
    const file = { original_key: finalKey, content_type: checked.contentType, bytes: checked.size };
    // The ETag the original has in place (what tells a file overwritten there later from ours).
    let originalEtag: string | null = null;
    if (copiesFirst) {
      try {
        originalEtag = (await originals.copy(row.objectKey, staged.copyIf, file)) || null;
      } catch (err) {
        await pending.release(row.key, finalKey);
        await images.discardObjects([finalKey]);
        throw err instanceof JobFailed ? new Conflict(err.message) : err;
      }
    }

    const [thumbKey, displayKey] = renditionKeys as [string, string];
    const now = clock();
    // Cleaned here too: an outside upload's name is its key, and rows from older versions kept bidi controls.
    const originalName = cleanText(fileNameOf(row), NAME_MAX);
    const fields = {
      original_name: originalName,
      original_key: finalKey,
      display_key: displayKey,
      thumb_key: thumbKey,
      content_type: checked.contentType,
      bytes: checked.size,
      // Known once the renditions job has decoded the file.
      width: 0,
      height: 0,
      taken_at: null,
      updated_at: now,
      state: 'processing' as const,
      failure: null,
      placeholder: null,
      // Not copied yet: the original is copied from here, as this version, after the answer.
      staged_key: copiesFirst ? null : row.objectKey,
      staged_etag: copiesFirst ? null : staged.copyIf,
      // A share copy is made of a file on its first download: a new file has none yet.
      share_copy_key: null,
      // Known once it is in place: now, or when the job copies it (after the answer).
      original_etag: originalEtag,
    };
    const addJob = (imageId: string, ownerId: string) =>
      jobs.add({ kind: 'renditions', imageId, ownerId, originalKey: finalKey, now });
    type Outcome = { imageId: string; replaced: boolean; oldKeys: string[] } | DomainError | null;
    // Quota check, insert and closing the row are one write transaction: concurrent completions
    // queue on SQLite's write lock (PostgreSQL runs one of two that collide again), so each sees
    // the images the ones before it added. Only the database is touched in it: it may run twice.
    const commit = () =>
      database.transaction(async (): Promise<Outcome> => {
        const target = row.replacesImageId ? await imageRows.get(row.replacesImageId) : undefined;
        if (row.replacesImageId && !target) {
          await pending.close(row.key, finalKey, null, now); // the delete has usually closed it already
          return new NotFound('That image was deleted while the new file was uploading.');
        }
        // Deleted (to the trash) while the new file was uploading: the trash keeps the file it had.
        if (target?.trashed_at != null) {
          await pending.close(row.key, finalKey, null, now);
          return new Conflict(`“${target.title}” was moved to the trash while the new file was uploading.`);
        }
        const overQuota = await quota.refusal(ownerIdOf(user, target), checked.size, target);
        const imageId = overQuota ? null : (target?.id ?? randomUUID().replaceAll('-', ''));
        // Only the holder of the claim may close the row; a stale one (the sweep took over) backs off.
        if (!(await pending.close(row.key, finalKey, imageId, now, etag))) return null;
        if (overQuota || !imageId) return new TooLarge(overQuota ? guestWords(row, overQuota) : '');
        // A guest link counts the file only while it is in force and within its limits; else all
        // of this rolls back and the file is refused (below).
        if (row.guestLinkId !== null && !(await guestRows.accept(row.guestLinkId, checked.size, now)))
          throw new LinkRefused();
        if (target) {
          await imageRows.replaceFiles(target.id, fields);
          await addJob(target.id, target.owner_id);
          const old = rowToImage(target);
          const oldKeys = [old.originalKey, old.displayKey, old.thumbKey];
          // The file it replaces was not copied into place yet: its staging object goes instead.
          if (target.staged_key !== null) oldKeys.push(target.staged_key);
          if (target.share_copy_key !== null) oldKeys.push(target.share_copy_key);
          await images.queueDeletion(oldKeys);
          await notifications.recordChange(user, 'replace', target.id, `“${target.title}”`);
          if (actor) await audit.change(actor, 'replace', { target: target.id });
          return { imageId: target.id, replaced: true, oldKeys };
        }
        const title = cleanText(withoutExtension(originalName), TITLE_MAX) || 'Untitled';
        await imageRows.insert({
          ...fields,
          id: imageId,
          owner_id: user.id,
          title,
          created_at: now,
          guest_link_id: row.guestLinkId,
          guest_visit: row.guestVisit,
          guest_name: row.guestName,
        });
        // A guest link's album takes what it brings (an album deleted since takes nothing).
        const guestLink = row.guestLinkId !== null ? await guestRows.byId(row.guestLinkId) : undefined;
        if (guestLink?.album_id) await albumImages.add(guestLink.album_id, [imageId], now);
        await addJob(imageId, user.id);
        const change = outside ? 'outside_upload' : row.guestLinkId !== null ? 'guest_upload' : 'upload';
        // A guest link's owner hears of what it brings when the link says so (admins hear anyway).
        const tellOwner = guestLink?.notify_owner === 1 && user.role !== 'admin' ? user.email : undefined;
        await notifications.recordChange(user, change, imageId, `“${title}”`, tellOwner);
        if (outside) await audit.change(null, 'outside_upload', { target: row.key });
        // A guest has no account: the row names the link (their address is the actor's, when given).
        else if (row.guestLinkId !== null)
          await audit.change(actor ?? null, 'guest_upload', {
            target: imageId,
            detail: `link ${row.guestLinkId}`,
          });
        else if (actor) await audit.change(actor, 'upload', { target: imageId });
        return { imageId, replaced: false, oldKeys: [] };
      });
    let outcome: Outcome;
    try {
      outcome = await commit();
    } catch (err) {
      await pending.release(row.key, finalKey);
      if (copiesFirst) await images.discardObjects([finalKey]);
      if (err instanceof LinkRefused) return refuse(row, null, new Gone(GUEST_LINK_REFUSED), outside, etag);
      throw err;
    }

    if (!outcome) {
      if (copiesFirst) await images.discardObjects([finalKey]);
      return repeatOf(user, row.key);
    }
    // Objects put into the bucket from outside have no policy to replay: their row has done its work
    // (reconcile knows the object from its job until the job has copied it).
    if (outside) await pending.remove(row.key);
    if (outcome instanceof DomainError) {
      await images.discardObjects(copiesFirst ? [row.objectKey, finalKey] : [row.objectKey]);
      throw outcome;
    }
    if (copiesFirst) {
      await images.discardObjects([row.objectKey]);
    } else {
      // Copied into place after the answer, at once (its job does it again after a crash): a replay
      // of the policy has only that long to take the file's place, and fails the image if it does.
      // The staging object goes with the copy; its closed row stays for the sweep to remove.
      const image = { ...file, id: outcome.imageId, staged_key: row.objectKey, staged_etag: staged.copyIf };
      // Begun once this answer is on its way (the next turn of the event loop), not before it.
      setImmediate(() => void originals.store(image).catch(() => undefined));
    }
    deps.onJobAdded();
    await images.deleteObjects(outcome.oldKeys);
    return { imageId: outcome.imageId, replaced: outcome.replaced, isRepeat: false };
  }

  /**
   * Turns an uploaded object into an image: verifies the staging object (one version, by its ETag)
   * and records it, its original a copy of that version at a fresh key no policy names (made before
   * the answer, or right after it). Safe to call twice (the redirect GET may repeat):
   * a key already completed answers with its image. `etag` names the file the caller sent (the
   * bucket's redirect adds it): a call for another file than the one kept is told it was not kept.
   * The completion is audited as the actor's (their request), or as an outside upload; one the
   * sweep finishes, for a browser that never came back, has no actor and no audit row.
   */
  async function complete(
    user: User,
    key: string,
    o: { outside?: boolean; etag?: string; actor?: Actor } = {},
  ): Promise<Completion> {
    const named = o.etag ? bareEtag(o.etag) : null;
    // No bucket stores such a key: nothing to ask it about.
    if (!isStorableKey(key)) throw new NotFound(NOT_FOUND);
    // A plain form's file is stored under its upload's prefix, by its own name.
    const rowKey = uploadKeyOf(key);
    const row = await pending.get(rowKey);
    if (!row || !can(user, 'upload.complete', row)) throw new NotFound(NOT_FOUND);
    if (row.closedAt !== null) {
      // A page's form posted again (another tab, a reload of a form that was reused) after its
      // first file was kept: not that file. (Rows closed by older versions hold the ETag unlowered.)
      if (named && row.etag && named !== bareEtag(row.etag)) throw new Conflict(SECOND_FILE);
      return repeatOf(user, rowKey);
    }
    const running = inFlight.get(rowKey);
    if (running) {
      if (!named || named === running.etag) return { ...(await running.work), isRepeat: true };
      // Perhaps another file than the one being completed: once that is settled, the row says.
      await running.work.catch(() => undefined);
      return complete(user, key, o);
    }
    const staged = { ...row, objectKey: key };
    const work = completeOnce(user, staged, { outside: o.outside ?? false, actor: o.actor }, named).finally(
      () => inFlight.delete(rowKey),
    );
    inFlight.set(rowKey, { work, etag: named });
    return work;
  }

  /**
   * Reserves one upload: the pending row that remembers its staging key (under the user's own
   * prefix) and holds its size ceiling against the quota. The caller signs what may write the key
   * (a POST policy, or the URLs of its parts).
   */
  async function reserve(user: User, req: PresignRequest): Promise<Reservation> {
    const replaced = req.replacesImageId ? await images.getForChange(user, req.replacesImageId) : null;
    if (!can(user, 'image.upload')) throw new Forbidden('Viewers cannot upload images.');
    if (req.size !== undefined && req.size > deps.maxUploadBytes) {
      throw new TooLarge(`That file is larger than the upload limit of ${formatBytes(deps.maxUploadBytes)}.`);
    }
    const originalName = cleanText(req.originalName ?? '', NAME_MAX);
    // Asked for by the page that told a form had sent a file already: that form is not re-signed
    // (the bucket may keep one file per form), any other open one is. One listing, on this path only.
    const usedForm = req.fresh && !req.guest ? await formWithFile(user, replaced?.id ?? null) : null;
    const { guest } = req;
    // One write transaction, so two reservations at once cannot both take the last room.
    return database.transaction(async () => {
      const now = clock();
      let expiresAt = now + POLICY_TTL_SECONDS * 1000;
      // The page's own form is reused by its next visit (a reload, another tab, a link from another
      // site), so visits never pile up reservations; upload.js takes it over for its first file.
      const form = req.formKey
        ? await pending.get(uploadKeyOf(req.formKey))
        : req.from === 'form'
          ? await pending.openForm(user.id, replaced?.id ?? null, now, usedForm ?? '', guest)
          : undefined;
      // Visits keep a form alive for an hour at most: what its policies wrote is settled by the
      // sweep once it expires, however often the page is reloaded. With less than 10 minutes of
      // that left, the next visit opens another.
      if (form && req.from === 'form') expiresAt = Math.min(expiresAt, form.createdAt + FORM_LIFETIME_MS);
      const reuse =
        form?.isForm &&
        can(user, 'upload.complete', form) &&
        form.closedAt === null &&
        form.finalKey === null &&
        form.expiresAt > now &&
        expiresAt - now >= FORM_MIN_LEFT_MS &&
        form.replacesImageId === (replaced?.id ?? null) &&
        form.guestLinkId === (guest?.linkId ?? null) &&
        form.guestVisit === (guest?.visit ?? null);
      const exceptKey = reuse ? form.key : '';
      // A guest's link first: its limits are what the guest is told about.
      const linkRoom = guest ? await guestRoom(guest.linkId, exceptKey, req.size, now) : Infinity;
      const left = await quota
        .roomForPolicy(replaced?.ownerId ?? user.id, replaced, exceptKey, req.size)
        .catch((err: unknown) => {
          throw guest && err instanceof DomainError ? new TooLarge(GUEST_QUOTA_FULL) : err;
        });
      const ceiling = req.size ?? Math.min(deps.maxUploadBytes, left, linkRoom);
      if (reuse) {
        // Taken over by upload.js, it is that tab's alone: another tab gets an upload of its own.
        const isForm = req.from === 'form';
        await pending.resign(form.key, { maxBytes: ceiling, originalName, expiresAt, isForm });
        // The policy never outlives its row (its expiry only grows): the sweep waits for both.
        const ttlSeconds = Math.floor((Math.max(expiresAt, form.expiresAt) - now) / 1000);
        return {
          key: form.key,
          maxBytes: ceiling,
          isNew: false,
          ttlSeconds: Math.min(ttlSeconds, POLICY_TTL_SECONDS),
        };
      }
      const open = await pending.live(user.id, now);
      // Guests' uploads count against their link's files instead (see guestRoom).
      if (!guest && open.count >= MAX_OPEN_UPLOADS) {
        const waitMs = (open.oldestExpiresAt ?? now) - now;
        throw new Throttled(
          `Too many uploads are waiting to finish. ${tryAgainIn(Math.ceil(waitMs / 1000))}`,
          Math.max(1, Math.ceil(waitMs / 1000)),
        );
      }
      // A plain form's file is stored by its own name under the upload's prefix; a guest's form
      // names one exact key (a prefix's policy could write any number of names until it expires).
      const fresh = `${stagingPrefix(user.id)}${randomUUID()}${req.from === 'form' && !guest ? '/' : ''}`;
      await pending.insert({
        key: fresh,
        ownerId: user.id,
        originalName,
        replacesImageId: replaced?.id ?? null,
        maxBytes: ceiling,
        isForm: req.from === 'form',
        createdAt: now,
        expiresAt: now + POLICY_TTL_SECONDS * 1000,
        ...(guest ? { guest } : {}),
      });
      return { key: fresh, maxBytes: ceiling, isNew: true, ttlSeconds: POLICY_TTL_SECONDS };
    });
  }

  /**
   * What one more upload through a guest link may write: the link must be in force, take more
   * files, and have bytes left beside what its unfinished uploads besides `exceptKey` could write
   * (read in the reservation's transaction, so uploads at once share them). Files are counted as
   * each completes (every guest opening the page holds a form: counting those would let a few
   * visitors shut a small link); the completion's count is the one that holds.
   */
  async function guestRoom(linkId: string, exceptKey: string, size: number | undefined, now: number) {
    const link = await guestRows.byId(linkId);
    if (!link || link.revoked_at !== null || (link.expires_at !== null && link.expires_at <= now))
      throw new Gone('This upload link is no longer in use.');
    if (link.files_accepted >= link.max_files) throw new TooLarge('This link takes no more files.');
    const reserved = await pending.guestReserved(linkId, exceptKey, now);
    const bytesLeft = link.max_bytes - link.bytes_accepted - reserved.bytes;
    const perFile = Math.min(link.max_file_bytes ?? deps.maxUploadBytes, deps.maxUploadBytes);
    if (size !== undefined && size > perFile)
      throw new TooLarge(`That file is larger than this link's limit of ${formatBytes(perFile)} a file.`);
    if (bytesLeft <= 0 || (size !== undefined && size > bytesLeft))
      throw new TooLarge(
        `That file is larger than what this link still takes (${formatBytes(Math.max(0, bytesLeft))}).`,
      );
    return Math.min(bytesLeft, perFile);
  }

  /** The page's open form for this target when a file is stored under its prefix already, else null. */
  async function formWithFile(user: User, replacesImageId: string | null): Promise<string | null> {
    const form = await pending.openForm(user.id, replacesImageId, clock());
    if (!form || !isPrefixUpload(form.key)) return null;
    const stored = await fromStorage(storage.list(form.key, undefined, 1));
    return stored.keys.length > 0 ? form.key : null;
  }

  /** The answer for a key that was finished (or is being finished) by another call. */
  async function repeatOf(user: User, key: string): Promise<Completion> {
    const row = await pending.get(key);
    if (!row || !can(user, 'upload.complete', row)) throw new NotFound(NOT_FOUND);
    if (row.closedAt === null) {
      throw new Conflict('This upload is being finished right now. Reload the page in a moment.');
    }
    const image = row.imageId ? await imageRows.get(row.imageId) : undefined;
    if (image) return { imageId: image.id, replaced: row.replacesImageId !== null, isRepeat: true };
    if (row.replacesImageId && !(await imageRows.get(row.replacesImageId))) {
      throw new NotFound('That image was deleted while the new file was uploading.');
    }
    throw new NotFound(NOT_FOUND);
  }

  return {
    /**
     * Gives up an upload its user cancelled (or will send again under a new policy): its row is
     * closed as a refused upload's is, so what its policy could still write no longer holds the
     * quota (beyond it, it is held until the sweep) nor counts among the open uploads. An upload
     * being completed, or finished, is left as it is.
     */
    async abandon(user: User, objectKey: string): Promise<void> {
      const key = uploadKeyOf(objectKey);
      const row = await pending.get(key);
      if (!row || !can(user, 'upload.complete', row)) throw new NotFound(NOT_FOUND);
      // Being completed (here or by another instance), or expired (the sweep's to settle): left alone.
      if (inFlight.has(key) || row.finalKey !== null || row.expiresAt <= clock()) return;
      if (!(await pending.close(key, null, null, clock()))) return;
      // An upload in parts: the parts the bucket holds go now (else the sweep drops them).
      if (row.multipartId) await fromStorage(storage.abortMultipart(key, row.multipartId));
    },

    /**
     * A POST policy for one file, on a staging key under the user's own prefix, and the pending row
     * that remembers it and reserves its size ceiling against the quota.
     */
    async presign(user: User, req: PresignRequest): Promise<PresignedUpload> {
      const { key, maxBytes, isNew, ttlSeconds } = await reserve(user, req);
      preloadImageModules();
      // A form's prefix takes any one name; upload.js, which sends the name itself, gets a fixed one.
      const objectKey = !isPrefixUpload(key)
        ? key
        : `${key}${req.from === 'form' ? FILENAME_PLACEHOLDER : SCRIPT_FILE_NAME}`;
      try {
        const post = await fromStorage(
          storage.presignPost({
            key: objectKey,
            maxBytes,
            ...(req.size !== undefined ? { minBytes: req.size } : {}),
            // The type a browser sends is only a claim: completion sniffs the bytes whatever it says.
            // With any file allowed, every file is claimed as bytes, so no stored object says text/html.
            contentTypePrefix: deps.accept === 'any' ? UNKNOWN_FILE_TYPE : 'image/',
            ttlSeconds,
            ...(req.from === 'form'
              ? { redirect: req.redirectTo ?? `${deps.appOrigin}/uploads/complete` }
              : SCRIPT_ANSWER),
          }),
        );
        return { key: objectKey, ...post };
      } catch (err) {
        // No policy was handed out: nothing can write the key, so its reservation goes.
        if (isNew) await pending.remove(key);
        throw err;
      }
    },

    reserve,

    complete,

    /**
     * Processes a failed image again (its renditions job), for someone who may change it: a
     * storage outage that outlasted the retries, say. Anything but a failed image is left alone.
     */
    async retryProcessing(user: User, id: string): Promise<void> {
      const image = await images.getForChange(user, id);
      const restarted = await database.transaction(async () => {
        if (!(await imageRows.markProcessing(image.id))) return false;
        const row = await imageRows.get(image.id);
        if (!row) return false;
        await jobs.add({
          kind: 'renditions',
          imageId: row.id,
          ownerId: row.owner_id,
          originalKey: row.original_key,
          now: clock(),
          // One run: a file that took its process down must not get six more tries per click.
          attempts: MAX_ATTEMPTS - 1,
        });
        return true;
      });
      if (restarted) deps.onJobAdded();
    },

    /**
     * An image's original overwritten in place outside the app (its ETag is not the one the app
     * stored): checked as an upload is, then its copies are made again (the same id, title, albums
     * and links); a file we do not keep fails the image, with the reason. The owner's quota is not
     * asked: whoever holds the bucket's key may write anything. Audited and announced as an outside
     * change. False when nothing changed (or the image did meanwhile).
     */
    async refreshOverwritten(imageId: string): Promise<boolean> {
      const row = await imageRows.get(imageId);
      if (!row || row.staged_key !== null || row.original_etag === null) return false;
      const start = await fromStorage(storage.readStart(row.original_key, SNIFF_BYTES));
      const etag = start?.info.etag ? bareEtag(start.info.etag) : null;
      if (!start || !etag || etag === row.original_etag) return false;
      const { size } = start.info;
      const contentType = await fromStorage(
        sniffKeptType(storage, row.original_key, start, start.info.etag ?? ''),
      );
      const tooLarge =
        size > deps.maxUploadBytes
          ? `The file put in its place outside the app is larger than the upload limit of ${formatBytes(deps.maxUploadBytes)}, so it was deleted.`
          : null;
      const notKept =
        size === 0 || (!isImageType(contentType) && deps.accept !== 'any')
          ? `The file put in its place outside the app is not a ${ACCEPTED_NAMES} image.`
          : null;
      const version = randomUUID();
      const base = `users/${row.owner_id}/`;
      const files = { thumb: `${base}thumbs/${version}.webp`, display: `${base}display/${version}.webp` };
      const now = clock();
      const old = await database.transaction(async () => {
        const current = await imageRows.get(imageId);
        if (current?.original_key !== row.original_key || current.original_etag !== row.original_etag)
          return null;
        // Its owner's limits hold whoever wrote the file (a person's own S3 key can): a file over the
        // upload limit or the quota is deleted, and the image fails saying so.
        const overQuota = tooLarge
          ? null
          : await quota
              .refusal(row.owner_id, size, current)
              .then((r) => r && `${r} (It was put in its place outside the app, and deleted.)`);
        const deleted = tooLarge ?? overQuota;
        const refusal = deleted ?? notKept;
        if (deleted) await images.queueDeletion([row.original_key]);
        await imageRows.replaceFiles(imageId, {
          content_type: contentType,
          bytes: deleted ? 0 : size,
          width: 0,
          height: 0,
          taken_at: null,
          updated_at: now,
          state: refusal ? 'failed' : 'processing',
          failure: refusal,
          placeholder: null,
          thumb_key: files.thumb,
          display_key: files.display,
          share_copy_key: null,
          original_etag: etag,
        });
        if (!refusal)
          await jobs.add({
            kind: 'renditions',
            imageId,
            ownerId: row.owner_id,
            originalKey: row.original_key,
            now,
          });
        const oldKeys = [
          current.thumb_key,
          current.display_key,
          ...(current.share_copy_key ? [current.share_copy_key] : []),
        ];
        await images.queueDeletion(oldKeys);
        await notifications.recordChange(null, 'outside_replace', imageId, `“${current.title}”`);
        await audit.change(null, 'outside_replace', {
          target: imageId,
          detail: refusal ?? `${formatBytes(size)}`,
        });
        return { oldKeys: deleted ? [...oldKeys, row.original_key] : oldKeys, refusal };
      });
      if (!old) return false;
      if (!old.refusal) deps.onJobAdded();
      await images.deleteObjects(old.oldKeys);
      return true;
    },

    /** Whether this process is completing the key now (the sweep leaves such a claim alone). */
    isCompleting: (key: string) => inFlight.has(key),

    /** Whether a completed upload's file is still to be copied from this staging key by its job. */
    isAwaitingCopy: (key: string) => imageRows.isStaged(key),
  };
}

export type Uploads = ReturnType<typeof createUploads>;
