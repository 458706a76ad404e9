import type { AppDb } from '../db/database.js';
import { imagesRepository } from '../db/repositories/images.js';
import type { Images } from '../services/images.js';
import { sniffKeptType } from '../services/sniff.js';
import { SNIFF_BYTES } from '../services/thumbnails.js';
import { bareEtag, SourceChanged, type Storage } from '../storage/storage.js';
import { JobFailed } from './queue.js';

const NOT_KEPT =
  'Another file was sent with this upload’s form or policy before this one was stored, and took its place, so this one was not kept. Please upload it again.';
const GONE = 'The uploaded file was gone from the bucket before it was stored. Please upload it again.';

/** The file a completion verified, and where it goes. */
interface VerifiedFile {
  original_key: string;
  content_type: string;
  bytes: number;
}

/** What storing needs of an image whose original is still to be copied into place. */
export interface ImageToStore extends VerifiedFile {
  id: string;
  staged_key: string | null;
  staged_etag: string | null;
}

/**
 * Puts a new upload's original in place: a server-side copy of its staging object to the image's
 * original key (which no policy can write), only as the version the completion verified (pinned by
 * its ETag), then the staging object goes and the image stops naming it. A completion does it before
 * it answers (a page form's upload) or right after (every other); the renditions job does it first if
 * it was not done, so a crash in between loses nothing. Copying twice is harmless: the same version
 * to the same key.
 */
export function createOriginalStore(deps: { database: AppDb; storage: Storage; images: Images }) {
  const { storage, images } = deps;
  const imageRows = imagesRepository(deps.database);

  /**
   * Whether the object at `key` is the file verified: its size and its type from its first bytes
   * (asked when the bucket gives a copy an ETag of its own, as SSE-KMS does, or after a crash).
   */
  async function isVerifiedFile(key: string, image: VerifiedFile): Promise<string | null> {
    const start = await storage.readStart(key, SNIFF_BYTES);
    if (start === null || start.info.size !== image.bytes) return null;
    // Read as the completion read the staging object: on, as a stream, when the first bytes do not tell.
    const type = await sniffKeptType(storage, key, start, start.info.etag ?? '').catch((err: unknown) => {
      if (err instanceof SourceChanged) return null;
      throw err;
    });
    return type === image.content_type ? bareEtag(start.info.etag ?? '') : null;
  }

  /**
   * Copies `source` (only as the version `etag` names) to the image's original key; a copy made
   * before (by an earlier run) counts. Returns the ETag the original has in place (bare; '' when the
   * bucket names none). Throws JobFailed when that version is not there.
   */
  async function copy(source: string, etag: string | null, image: VerifiedFile): Promise<string> {
    const to = image.original_key;
    try {
      const copied = await storage.copy(source, to, etag ? { ifMatch: etag } : {});
      // A copy without an ETag, or with another (SSE-KMS), is looked at instead.
      const isSameVersion =
        etag !== null && copied.etag !== undefined && bareEtag(copied.etag) === bareEtag(etag);
      if (isSameVersion) return bareEtag(copied.etag ?? '');
      const verified = await isVerifiedFile(to, image);
      if (verified === null) {
        await images.discardObjects([to]);
        throw new JobFailed(NOT_KEPT);
      }
      return verified;
    } catch (err) {
      if (err instanceof JobFailed) throw err;
      // Replaced or gone since: unless a run before this one copied it already.
      const isNotThere = err instanceof SourceChanged || (await storage.head(source)) === null;
      if (!isNotThere) throw err;
      const verified = await isVerifiedFile(to, image);
      if (verified === null) throw new JobFailed(err instanceof SourceChanged ? NOT_KEPT : GONE);
      return verified;
    }
  }

  async function storeOnce(image: ImageToStore, source: string): Promise<boolean> {
    let originalEtag: string;
    try {
      originalEtag = await copy(source, image.staged_etag, image);
    } catch (err) {
      // The file verified is lost for good: the image fails with the reason and stops naming its
      // staging object, so what a replay put there goes with the sweep.
      if (err instanceof JobFailed) {
        await deps.database.transaction(async () => {
          await imageRows.markFailed(image.id, image.original_key, err.message);
          await imageRows.unstage(image.id, source);
        });
      }
      throw err;
    }
    const now = await imageRows.get(image.id);
    if (now?.original_key !== image.original_key) {
      // Deleted or replaced while it was copied: the delete named this key, but may have run before
      // the copy landed.
      if (!(await images.usesKey(image.original_key))) await images.discardObjects([image.original_key]);
      return false;
    }
    // The staging object goes before the image stops naming it: a crash in between leaves a name
    // the next run clears (its copy finds the original in place), never an object no one names.
    await images.discardObjects([source]);
    await imageRows.unstage(image.id, source, originalEtag || null);
    return true;
  }

  /** Copies running in this process, by staging key: a worker that takes the image up waits for the completion's. */
  const inFlight = new Map<string, Promise<boolean>>();
  /** The same, by image (the latest), for a download asked for while its original is being copied. */
  const byImage = new Map<string, Promise<boolean>>();

  return {
    /** The copy alone, for a completion that puts the original in place before it answers. */
    copy: (source: string, etag: string, file: VerifiedFile) => copy(source, etag, file),

    /**
     * Stores the image's original (at once when it is in place already); false when the image was
     * deleted or replaced meanwhile (the copy is then removed). Throws JobFailed when the file
     * verified is no longer there.
     */
    store(image: ImageToStore): Promise<boolean> {
      const source = image.staged_key;
      if (source === null) return Promise.resolve(true);
      const running = inFlight.get(source);
      if (running !== undefined) return running;
      const work = storeOnce(image, source).finally(() => {
        inFlight.delete(source);
        if (byImage.get(image.id) === work) byImage.delete(image.id);
      });
      inFlight.set(source, work);
      byImage.set(image.id, work);
      return work;
    },

    /** Settles once a copy of the image's original this process is making has ended (at once if none). */
    async settled(imageId: string): Promise<void> {
      await byImage.get(imageId)?.catch(() => undefined);
    },
  };
}

export type OriginalStore = ReturnType<typeof createOriginalStore>;
