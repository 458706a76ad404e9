import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { SignedInEnv } from '../env.js';
import { statusOf } from '../http-errors.js';
import { actorOf, requireCan, requireUser } from '../middleware/session.js';
import { can } from '../policy.js';
import { DomainError, Invalid, NotFound } from '../services/errors.js';
import type { Image } from '../services/images.js';
import {
  Card,
  FIRST_POLL_SECONDS,
  type ImageContext,
  imageHref,
  ThumbLink,
  TrashedCard,
} from '../views/gallery.js';
import { ConfirmBulkDeletePage, ConfirmDeletePage, ImagePage, type ImagePageProps } from '../views/image.js';
import { redirectShowingLink, takeNewLink } from './new-link.js';
import { nothingSelected, noticeOf, withNotice } from './notices.js';
import { fragment, page } from './render.js';
import { createLink, shareForm } from './shares.js';
import { renderUploadPage } from './uploads.js';
import { flag, form, text, tickedIds } from './validate.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** What an album id can look like (a random token); anything else is not looked up. */
const ALBUM_ID = /^[a-z0-9]{1,64}$/;

/** One image and what its page does with it (`/images/...`); every route here needs a signed-in user. */
export const imageRoutes = new Hono<SignedInEnv>().use(requireUser);

/** The image page, with the owner's share links when the viewer may manage them. */
async function renderImage(
  c: Context<SignedInEnv>,
  image: Image,
  extra: Pick<ImagePageProps, 'notice' | 'error' | 'newShareUrl'> = {},
  status: ContentfulStatusCode = 200,
) {
  const { user, services } = c.var;
  const { images, shares, albums } = services;
  const links = can(user, 'image.change', image)
    ? (await shares.listForImage(image)).map((link) => ({ link, state: shares.stateOf(link) }))
    : [];
  const context = imageContextOf(c);
  // An album the user may not see, or that does not hold the image, leaves the gallery's order.
  const inAlbum = context.album ? await albums.neighbours(user, context.album, image) : null;
  const neighbours = inAlbum ?? (await images.neighbours(user, image, context.order));
  return page(
    c,
    <ImagePage
      user={user}
      image={image}
      displayUrl={await images.displayUrl(image)}
      neighbours={neighbours}
      context={inAlbum ? { order: 'uploaded', album: context.album } : { order: context.order }}
      links={links}
      guestLabel={image.guest ? await services.guestLinks.labelOf(image.guest.linkId) : undefined}
      purgeAt={image.trashedAt === null ? undefined : image.trashedAt + c.var.config.trashDays * DAY_MS}
      {...extra}
    />,
    status,
  );
}

/** The grid an image was opened from (`?order=taken`, `?album=<id>`); anything else is the gallery. */
function imageContextOf(c: Context<SignedInEnv>): ImageContext {
  const album = c.req.query('album');
  return {
    order: c.req.query('order') === 'taken' ? 'taken' : 'uploaded',
    album: album && ALBUM_ID.test(album) ? album : undefined,
  };
}

imageRoutes.get('/:id', async (c) => {
  const image = await c.var.services.images.getForUser(c.var.user, c.req.param('id'));
  const notice = noticeOf(c, {
    uploaded: 'Uploaded.',
    replaced: 'File replaced.',
    revoked: 'Link revoked.',
    renamed: 'Renamed.',
    restored: 'Restored from the trash.',
    // Worded from the image, not the address: a link cannot tell the owner something untrue.
    shared: () =>
      image.isShared ? 'Shown to all signed-in users.' : 'Private again: only you and admins see it.',
  });
  return renderImage(c, image, { notice, newShareUrl: await takeNewLink(c) });
});

/** A card's picture alone: a processing card (htmx) swaps itself for this until it is ready. */
imageRoutes.get('/:id/thumb', async (c) => {
  const card = await c.var.services.images.card(c.var.user, c.req.param('id'));
  // How long this card waited (it doubles each time); anything odd is the first wait.
  const wait = Number(c.req.query('wait'));
  const waitSeconds =
    Number.isInteger(wait) && wait >= FIRST_POLL_SECONDS && wait <= 30 ? wait : FIRST_POLL_SECONDS;
  return fragment(c, <ThumbLink card={card} context={imageContextOf(c)} waitSeconds={waitSeconds} />);
});

imageRoutes.post('/:id/retry', async (c) => {
  await c.var.services.uploads.retryProcessing(c.var.user, c.req.param('id'));
  return c.redirect(imageHref(c.req.param('id'), imageContextOf(c)), 303);
});

imageRoutes.get('/:id/download', async (c) => {
  c.header('Cache-Control', 'no-store');
  return c.redirect(await c.var.services.images.downloadUrl(actorOf(c), c.req.param('id')), 303);
});

imageRoutes.post('/:id/rename', form(z.object({ title: text })), async (c) => {
  const { images } = c.var.services;
  try {
    const image = await images.rename(actorOf(c), c.req.param('id'), c.req.valid('form').title);
    return c.redirect(withNotice(imageHref(image.id, imageContextOf(c)), 'renamed'), 303);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const image = await images.getForUser(c.var.user, c.req.param('id'));
    return renderImage(c, image, { error: err.message }, statusOf(err));
  }
});

imageRoutes.post('/:id/visibility', form(z.object({ shared: flag })), async (c) => {
  const { shared } = c.req.valid('form');
  const image = await c.var.services.images.setShared(actorOf(c), c.req.param('id'), shared);
  return c.redirect(withNotice(imageHref(image.id, imageContextOf(c)), 'shared'), 303);
});

/**
 * The upload page, replacing this image's file. Its own route beside the image's other actions;
 * the page and the presign are the upload page's (src/routes/uploads.tsx).
 */
imageRoutes.get('/:id/replace', async (c) =>
  renderUploadPage(c, await c.var.services.images.getForChange(c.var.user, c.req.param('id'))),
);

imageRoutes.get('/:id/delete', async (c) => {
  const image = await c.var.services.images.getForChange(c.var.user, c.req.param('id'));
  return page(c, <ConfirmDeletePage user={c.var.user} image={image} trashDays={c.var.config.trashDays} />);
});

/**
 * The gallery a delete goes back to, saying what went to the trash (and when, for its Undo): the
 * owner's, as the user sees it (an admin deleting someone's image goes back to that gallery).
 */
function afterTrash(c: Context<SignedInEnv>, ownerId: string, moved: { count: number; at: number }) {
  const gallery = ownerId === c.var.user.id ? '/' : `/users/${ownerId}`;
  const query = new URLSearchParams({ trashed: String(moved.count), at: String(moved.at), owner: ownerId });
  return c.redirect(`${gallery}?${query}`, 303);
}

imageRoutes.post('/:id/delete', async (c) => {
  const { images } = c.var.services;
  // Pressed twice (or from a page open since): one already in the trash stays as it is.
  const [image] = await images.getAllForChange(c.var.user, [c.req.param('id')], 'any');
  if (!image) throw new NotFound('There is no such image.');
  const moved = await images.trash(actorOf(c), [image.id]);
  // htmx turns the card into its "Undo"; a plain form goes back to the gallery, with an Undo there.
  if (c.req.header('HX-Request')) return fragment(c, <TrashedCard id={image.id} title={image.title} />);
  return afterTrash(c, image.ownerId, moved);
});

/** Restores one image from the trash: htmx puts its card back, a plain form goes to its page. */
imageRoutes.post('/:id/restore', async (c) => {
  const { images } = c.var.services;
  const id = c.req.param('id');
  await images.restore(actorOf(c), [id]);
  if (c.req.header('HX-Request')) {
    const card = await images.card(c.var.user, id);
    return fragment(c, <Card card={card} canChange context={{ order: 'uploaded' }} />);
  }
  return c.redirect(withNotice(`/images/${id}`, 'restored'), 303);
});

imageRoutes.post('/delete', form(z.object({ ids: tickedIds, confirm: text, back: text })), async (c) => {
  const { ids, confirm, back } = c.req.valid('form');
  const { user, services, config } = c.var;
  if (ids.length === 0) return c.redirect(nothingSelected(back, config.appOrigin), 303);
  const images = await services.images.getAllForChange(user, ids, 'any');
  if (confirm !== 'yes') {
    return page(c, <ConfirmBulkDeletePage user={user} images={images} trashDays={config.trashDays} />);
  }
  const moved = await services.images.trash(actorOf(c), ids);
  const owners = new Set(images.map((i) => i.ownerId));
  // Images of several owners (an admin's choice) have no one gallery to go back to: the own one.
  return afterTrash(c, owners.size === 1 ? (images[0]?.ownerId ?? user.id) : user.id, moved);
});

/** A share link for this one image, made from its page. */
imageRoutes.post('/:id/shares', requireCan('share.create'), form(shareForm), async (c) => {
  const image = await c.var.services.images.getForChange(c.var.user, c.req.param('id'));
  try {
    const link = await createLink(c, [image.id], c.req.valid('form'));
    return redirectShowingLink(c, link, imageHref(image.id, imageContextOf(c)));
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return renderImage(c, image, { error: err.message }, 400);
  }
});
