import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { SignedInEnv } from '../env.js';
import { countOf } from '../format.js';
import { actorOf, requireCan, requireUser } from '../middleware/session.js';
import { type ImageCursor, imageCursor } from '../services/cursors.js';
import { Invalid, NotFound } from '../services/errors.js';
import { parseExpiry } from '../services/shares.js';
import { AddToAlbumPage, AlbumPage, AlbumsPage } from '../views/albums.js';
import { GalleryCards } from '../views/gallery.js';
import { redirectShowingLink, takeNewLink } from './new-link.js';
import { noticeOf, withNotice } from './notices.js';
import { formError, fragment, page } from './render.js';
import { downloadOption, shareForm } from './shares.js';
import { cursor, form, query, selectedIds, text } from './validate.js';

/** Albums (`/albums/...`): an owner's named sets of their images, and their share links. */
export const albumRoutes = new Hono<SignedInEnv>().use(requireUser);

/** Anyone's albums, for admins (`/users/:id/albums`), as anyone's gallery is. */
export const userAlbumRoutes = new Hono<SignedInEnv>();

/** Ids a form may leave out: an album made from nothing, or from a selection. */
const someIds = z.preprocess(
  (value) =>
    [value]
      .flat()
      .filter((v) => typeof v === 'string')
      .slice(0, 500),
  z.array(z.string()),
);
const count = (value: string) => (/^\d{1,4}$/.test(value) ? Number(value) : 0);
const NOTICES = {
  created: 'Album created.',
  renamed: 'Album renamed.',
  cover: 'Cover changed.',
  added: (n: string) => `Added ${countOf(count(n), 'image')}.`,
  removed: (n: string) => `Removed ${countOf(count(n), 'image')} from the album; they stay in the gallery.`,
  deleted: 'Album deleted; its images stay in the gallery.',
};

albumRoutes.get('/', requireCan('album.create'), (c) => albumsOf(c, c.var.user.id));

albumRoutes.post('/', requireCan('album.create'), form(z.object({ name: text, ids: someIds })), async (c) => {
  const { name, ids } = c.req.valid('form');
  try {
    const album = await c.var.services.albums.create(actorOf(c), name, ids);
    return c.redirect(withNotice(`/albums/${album.id}`, 'created'), 303);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    if (ids.length === 0) return albumsOf(c, c.var.user.id, err.message);
    return formError(c, err, (message) => addPage(c, ids, message));
  }
});

/** The gallery's "Add to album": which album the selection goes into. */
albumRoutes.post('/add', requireCan('album.create'), form(z.object({ ids: selectedIds })), async (c) =>
  page(c, await addPage(c, c.req.valid('form').ids)),
);

albumRoutes.get('/:id', query(z.object(cursor(imageCursor))), async (c) => {
  const after = c.req.valid('query').cursor;
  if (c.req.header('HX-Request') && after) {
    const { album, ...result } = await c.var.services.albums.page(c.var.user, c.req.param('id'), after);
    return fragment(
      c,
      <GalleryCards
        {...result}
        basePath={`/albums/${album.id}`}
        canChange
        order="uploaded"
        search=""
        previousSortAt={null}
      />,
    );
  }
  return albumPage(c, {
    after,
    notice: noticeOf(c, NOTICES),
    newUrl: after ? undefined : await takeNewLink(c),
  });
});

albumRoutes.post('/:id/rename', form(z.object({ name: text })), async (c) => {
  const id = c.req.param('id');
  try {
    await c.var.services.albums.rename(actorOf(c), id, c.req.valid('form').name);
    return c.redirect(withNotice(`/albums/${id}`, 'renamed'), 303);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return albumPage(c, { error: err.message }, 400);
  }
});

albumRoutes.post('/:id/delete', async (c) => {
  const album = await c.var.services.albums.delete(actorOf(c), c.req.param('id'));
  const list = album.ownerId === c.var.user.id ? '/albums' : `/users/${album.ownerId}/albums`;
  return c.redirect(withNotice(list, 'deleted'), 303);
});

albumRoutes.post('/:id/images', form(z.object({ ids: selectedIds })), async (c) => {
  const id = c.req.param('id');
  const added = await c.var.services.albums.addImages(actorOf(c), id, c.req.valid('form').ids);
  return c.redirect(withNotice(`/albums/${id}`, 'added', added), 303);
});

albumRoutes.post('/:id/remove', form(z.object({ ids: selectedIds })), async (c) => {
  const id = c.req.param('id');
  const removed = await c.var.services.albums.removeImages(actorOf(c), id, c.req.valid('form').ids);
  return c.redirect(withNotice(`/albums/${id}`, 'removed', removed), 303);
});

albumRoutes.post('/:id/cover', form(z.object({ ids: selectedIds })), async (c) => {
  const id = c.req.param('id');
  const { ids } = c.req.valid('form');
  try {
    if (ids.length > 1) throw new Invalid('Select one image to use as the cover.');
    await c.var.services.albums.setCover(actorOf(c), id, ids[0] as string);
    return c.redirect(withNotice(`/albums/${id}`, 'cover'), 303);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return albumPage(c, { error: err.message }, 400);
  }
});

albumRoutes.post('/:id/shares', form(shareForm), async (c) => {
  const options = c.req.valid('form');
  try {
    const { token, link } = await c.var.services.albums.share(actorOf(c), c.req.param('id'), {
      expiry: parseExpiry(options.expiry),
      password: options.password,
      ...downloadOption(options),
    });
    return redirectShowingLink(c, { id: link.id, token }, `/albums/${c.req.param('id')}`);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return albumPage(c, { error: err.message }, 400);
  }
});

userAlbumRoutes.get('/:id/albums', requireCan('admin'), async (c) => {
  const owner = await c.var.services.users.get(c.req.param('id'));
  if (!owner) throw new NotFound('There is no such user.');
  return albumsOf(c, owner.id);
});

async function albumsOf(c: Context<SignedInEnv>, ownerId: string, error?: string) {
  const { user, services } = c.var;
  const owner = ownerId === user.id ? user : await services.users.get(ownerId);
  if (!owner) throw new NotFound('There is no such user.');
  const albums = await services.albums.listForOwner(owner.id);
  const notice = noticeOf(c, { deleted: NOTICES.deleted });
  return page(
    c,
    <AlbumsPage user={user} owner={owner} albums={albums} notice={notice} error={error} />,
    error ? 400 : 200,
  );
}

async function addPage(c: Context<SignedInEnv>, ids: string[], error?: string) {
  const { images, albums } = await c.var.services.albums.choicesFor(c.var.user, ids);
  return <AddToAlbumPage user={c.var.user} images={images} albums={albums} error={error} />;
}

/** The album's page: its first page of cards (or the one after `after`), its links, what just happened. */
async function albumPage(
  c: Context<SignedInEnv>,
  extra: {
    after?: ImageCursor | null;
    newUrl?: string | undefined;
    notice?: string | undefined;
    error?: string;
  },
  status: 200 | 400 = 200,
) {
  const { user, services } = c.var;
  const id = c.req.param('id') ?? '';
  const after = extra.after ?? null;
  const result = await services.albums.page(user, id, after);
  const links = (await services.albums.links(user, id)).map((link) => ({
    link,
    state: services.shares.stateOf(link),
  }));
  return page(
    c,
    <AlbumPage
      user={user}
      {...result}
      isFirstPage={!after}
      links={links}
      newUrl={extra.newUrl}
      notice={extra.notice}
      error={extra.error}
    />,
    status,
  );
}
