import type { AppDb } from '../db/database.js';
import { albumImagesRepository } from '../db/repositories/album-images.js';
import { type AlbumRow, albumsRepository } from '../db/repositories/albums.js';
import { isImageType } from '../image-types.js';
import { TITLE_MAX } from '../limits.js';
import { can } from '../policy.js';
import type { Actor, Audit } from './audit.js';
import type { Clock } from './clock.js';
import type { ImageCursor } from './cursors.js';
import { Forbidden, Invalid, NotFound } from './errors.js';
import { cleanText, type GalleryCard, type Image, type Images, type Neighbours } from './images.js';
import type { DownloadOption, ShareExpiry, ShareLink, Shares } from './shares.js';
import { randomToken } from './tokens.js';
import type { User } from './users.js';

export interface Album {
  id: string;
  ownerId: string;
  name: string;
  /** the cover the owner chose, if any (else the album's newest image is its cover) */
  coverImageId: string | null;
  imageCount: number;
  /** the cover's signed thumbnail URL; null while the album holds no ready image */
  coverUrl: string | null;
  createdAt: number;
}

const NOT_FOUND = 'There is no such album.';

/**
 * Albums: an owner's named sets of their own images. An image may be in several; deleting an album
 * leaves its images, deleting an image takes it out of its albums (the foreign keys do that).
 * Who may see or change an album is asked of the database on every call: another person's album is
 * NotFound, so ids reveal nothing.
 */
export function createAlbums(deps: {
  database: AppDb;
  audit: Audit;
  images: Images;
  shares: Shares;
  clock: Clock;
}) {
  const { database, audit, images, shares, clock } = deps;
  const albums = albumsRepository(database);
  const albumImages = albumImagesRepository(database);

  async function toAlbum(row: AlbumRow): Promise<Album> {
    return {
      id: row.id,
      ownerId: row.owner_id,
      name: row.name,
      coverImageId: row.cover_image_id,
      imageCount: row.image_count,
      coverUrl: row.cover_thumb_key === null ? null : await images.thumbUrl(row.cover_thumb_key),
      createdAt: row.created_at,
    };
  }

  async function ownedAlbum(user: User, id: string): Promise<Album> {
    const row = await albums.byId(id);
    if (!row || !can(user, 'album.change', { ownerId: row.owner_id })) throw new NotFound(NOT_FOUND);
    return toAlbum(row);
  }

  function cleanName(name: string): string {
    const clean = cleanText(name, TITLE_MAX);
    if (!clean) throw new Invalid('Give the album a name.');
    return clean;
  }

  /**
   * The images, if the user may change each of them and all belong to `ownerId` (an album holds
   * only its owner's images: nobody files someone else's pictures, an admin included).
   */
  async function ownersImages(user: User, ownerId: string, ids: readonly string[]): Promise<Image[]> {
    const list = await images.getAllForChange(user, [...new Set(ids)]);
    if (list.some((image) => image.ownerId !== ownerId))
      throw new Forbidden('An album can only hold images of its owner.');
    return list;
  }

  async function listForOwner(ownerId: string): Promise<Album[]> {
    return Promise.all((await albums.listByOwner(ownerId)).map(toAlbum));
  }

  return {
    /**
     * Makes an album, with the selected images if any. Its owner is theirs (an admin filing a
     * member's images makes the member's album), or the actor's when it starts empty.
     */
    async create(actor: Actor, name: string, imageIds: readonly string[] = []): Promise<Album> {
      const { user } = actor;
      if (!can(user, 'album.create')) throw new Forbidden('Viewers cannot make albums.');
      const clean = cleanName(name);
      const owners = new Set(
        (await images.getAllForChange(user, [...new Set(imageIds)])).map((i) => i.ownerId),
      );
      if (owners.size > 1)
        throw new Invalid('An album holds one person’s images: select images of one owner.');
      const ownerId = [...owners][0] ?? user.id;
      const id = randomToken();
      const now = clock();
      await database.transaction(async () => {
        await albums.insert({ id, owner_id: ownerId, name: clean, created_at: now, updated_at: now });
        await albumImages.add(id, [...new Set(imageIds)], now);
        await audit.change(actor, 'album_create', {
          target: id,
          detail: `“${clean}”${imageIds.length ? `; ${new Set(imageIds).size} image(s)` : ''}`,
        });
      });
      return ownedAlbum(user, id);
    },

    get: ownedAlbum,

    listForOwner,

    /** The albums the selected images may go into: their owner's. */
    async choicesFor(user: User, imageIds: readonly string[]): Promise<{ images: Image[]; albums: Album[] }> {
      const list = await images.getAllForChange(user, [...new Set(imageIds)]);
      const owners = new Set(list.map((i) => i.ownerId));
      if (owners.size > 1)
        throw new Invalid('An album holds one person’s images: select images of one owner.');
      const ownerId = [...owners][0] ?? user.id;
      return { images: list, albums: await listForOwner(ownerId) };
    },

    /** One page of the album's cards, in the gallery's order. */
    async page(
      user: User,
      id: string,
      after: ImageCursor | null,
    ): Promise<{ album: Album; cards: GalleryCard[]; nextCursor: string | null }> {
      const album = await ownedAlbum(user, id);
      const page = await images.listPageOf((from, limit) => albumImages.page(album.id, from, limit), after);
      return { album, ...page };
    },

    /**
     * The images before and after `image` in the album's grid, for its page's previous/next links;
     * null when the user may not see the album or the image is not in it (the page then goes by
     * the gallery).
     */
    async neighbours(user: User, id: string, image: Image): Promise<Neighbours | null> {
      const row = await albums.byId(id);
      if (!row || !can(user, 'album.change', { ownerId: row.owner_id })) return null;
      if (!(await albumImages.has(row.id, image.id))) return null;
      const found = await albumImages.neighbours(row.id, { sort: image.createdAt, id: image.id });
      return { previous: found.newer, next: found.older };
    },

    async rename(actor: Actor, id: string, name: string): Promise<Album> {
      const album = await ownedAlbum(actor.user, id);
      const clean = cleanName(name);
      await database.transaction(async () => {
        await albums.rename(album.id, clean, clock());
        await audit.change(actor, 'album_rename', { target: album.id, detail: clean });
      });
      return { ...album, name: clean };
    },

    /** Deletes the album; its images stay, its share links stop showing anything. */
    async delete(actor: Actor, id: string): Promise<Album> {
      const album = await ownedAlbum(actor.user, id);
      await database.transaction(async () => {
        await albums.delete(album.id);
        await audit.change(actor, 'album_delete', { target: album.id, detail: `“${album.name}”` });
      });
      return album;
    },

    /** Adds images of the album's owner; returns how many were not in it yet. */
    async addImages(actor: Actor, id: string, imageIds: readonly string[]): Promise<number> {
      const album = await ownedAlbum(actor.user, id);
      const list = await ownersImages(actor.user, album.ownerId, imageIds);
      return albumImages.add(
        album.id,
        list.map((i) => i.id),
        clock(),
      );
    },

    /** Takes images out of the album (they stay in the gallery); returns how many were in it. */
    async removeImages(actor: Actor, id: string, imageIds: readonly string[]): Promise<number> {
      const album = await ownedAlbum(actor.user, id);
      const ids = [...new Set(imageIds)];
      return database.transaction(async () => {
        // A cover taken out falls back to the album's newest image.
        if (album.coverImageId !== null && ids.includes(album.coverImageId))
          await albums.setCover(album.id, null, clock());
        return albumImages.remove(album.id, ids);
      });
    },

    /** Makes one of the album's images its cover. */
    async setCover(actor: Actor, id: string, imageId: string): Promise<void> {
      const album = await ownedAlbum(actor.user, id);
      if (!(await albumImages.has(album.id, imageId)))
        throw new Invalid('Choose the cover among the album’s images.');
      const image = await images.getForUser(actor.user, imageId);
      if (!isImageType(image.contentType))
        throw new Invalid('A file has no picture to be a cover: choose an image.');
      await albums.setCover(album.id, imageId, clock());
    },

    /** A share link showing the album (what it holds when opened); the token, once. */
    async share(
      actor: Actor,
      id: string,
      opts: { expiry: ShareExpiry; password?: string } & DownloadOption,
    ): Promise<{ token: string; link: ShareLink }> {
      const album = await ownedAlbum(actor.user, id);
      return shares.createForAlbum(actor, album, opts);
    },

    /** The album's share links, newest first. */
    async links(user: User, id: string): Promise<ShareLink[]> {
      const album = await ownedAlbum(user, id);
      return shares.listForAlbum(album.id);
    },
  };
}
