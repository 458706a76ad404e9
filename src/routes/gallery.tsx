import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import type { AppEnv, SignedInEnv } from '../env.js';
import { requireCan, requireUser } from '../middleware/session.js';
import { can } from '../policy.js';
import { cursorParam, imageCursor } from '../services/cursors.js';
import { NotFound } from '../services/errors.js';
import type { GalleryPageResult, GalleryQuery } from '../services/images.js';
import type { User } from '../services/users.js';
import {
  GalleryCards,
  GalleryPage,
  galleryHref,
  SharedGalleryPage,
  type TrashUndo,
} from '../views/gallery.js';
import { NOTHING_SELECTED, noticeOf } from './notices.js';
import { cachedPage } from './page-cache.js';
import { fragment } from './render.js';
import { TRASH_NOTICES } from './trash.js';
import { cursor, query, text } from './validate.js';

/** The galleries: your own (`/`), the shared images (`/shared`), and for admins anyone's. */
export const galleryRoutes = new Hono<AppEnv>();

/**
 * A gallery's URL: `order` (uploaded, the default, or taken), `q` (a search), `cursor` (the page
 * after a card) and `upto` (every card down to one: how far someone had scrolled). Any order or
 * search text is taken (a search is read as words, see searchWords); a cursor must decode.
 */
const pageLink = query(
  z
    .object({
      ...cursor(imageCursor),
      upto: text.pipe(cursorParam(imageCursor)),
      order: text.transform((order) => (order === 'taken' ? ('taken' as const) : ('uploaded' as const))),
      q: text.transform((q) => q.trim()),
    })
    .transform(({ cursor: after, upto, order, q }): GalleryQuery => ({ after, upto, order, search: q })),
);

const ORDER_COOKIE = 's3g_order';
const YEAR_SECONDS = 365 * 24 * 60 * 60;

/**
 * The order a person chose is remembered (a cookie for a year): their gallery's bare address opens
 * in it. Only the bare address: any other names its order (or is the upload order's), as its
 * cursors were made for it.
 */
const rememberOrder: MiddlewareHandler<SignedInEnv> = async (c, next) => {
  const params = new URL(c.req.url).searchParams;
  const chosen = params.get('order');
  if (chosen === 'taken' || chosen === 'uploaded') {
    setCookie(c, ORDER_COOKIE, chosen, {
      httpOnly: true,
      sameSite: 'Lax',
      secure: c.var.config.isSecureOrigin,
      path: '/',
      maxAge: YEAR_SECONDS,
    });
  } else if (params.size === 0 && getCookie(c, ORDER_COOKIE) === 'taken' && !c.req.header('HX-Request')) {
    return c.redirect(`${c.req.path}?order=taken`, 303);
  }
  await next();
};

const galleryNotices = {
  restored: TRASH_NOTICES.restored,
  unselected: NOTHING_SELECTED,
};

/**
 * What the redirect after a delete says went to the trash (`?trashed=2&at=…&owner=…`), for its
 * Undo. Only numbers a delete could have made; Undo itself restores only what the user may change.
 */
function undoOf(c: Context<SignedInEnv>, ownerId: string): TrashUndo | undefined {
  const count = c.req.query('trashed') ?? '';
  const at = c.req.query('at') ?? '';
  if (!/^\d{1,4}$/.test(count) || !/^\d{1,16}$/.test(at) || c.req.query('owner') !== ownerId)
    return undefined;
  return Number(count) > 0 ? { count: Number(count), at: Number(at), ownerId } : undefined;
}

galleryRoutes.get('/', requireUser, rememberOrder, pageLink, (c) =>
  gallery(c, c.var.user, '/', c.req.valid('query'), noticeOf(c, galleryNotices), undoOf(c, c.var.user.id)),
);

galleryRoutes.get('/shared', requireUser, rememberOrder, pageLink, async (c) => {
  const asked = c.req.valid('query');
  const result = await c.var.services.images.listShared(asked);
  const listing = { basePath: '/shared', search: asked.search ?? '', canChange: false };
  if (c.req.header('HX-Request') && asked.after) return nextCards(c, result, asked, listing);
  return cachedPage(c, SharedGalleryPage, {
    user: c.var.user,
    ...result,
    ...listing,
    isFirstPage: !asked.after,
  });
});

galleryRoutes.get('/users/:id', requireCan('admin'), rememberOrder, pageLink, async (c) => {
  const owner = await c.var.services.users.get(c.req.param('id'));
  if (!owner) throw new NotFound('There is no such user.');
  return gallery(
    c,
    owner,
    `/users/${owner.id}`,
    c.req.valid('query'),
    noticeOf(c, galleryNotices),
    undoOf(c, owner.id),
  );
});

/** A page of the owner's gallery, or for htmx just the next cards. */
async function gallery(
  c: Context<SignedInEnv>,
  owner: User,
  basePath: string,
  asked: GalleryQuery,
  notice?: string,
  undo?: TrashUndo,
) {
  const { user } = c.var;
  const result = await c.var.services.images.listPage(owner.id, asked);
  const listing = { basePath, search: asked.search ?? '', canChange: can(user, 'image.change') };
  if (c.req.header('HX-Request') && asked.after) return nextCards(c, result, asked, listing);
  return cachedPage(c, GalleryPage, {
    user,
    owner,
    ...result,
    ...listing,
    isFirstPage: !asked.after,
    notice,
    undo,
  });
}

/**
 * The cards after a "Load more" (htmx appends them), and the address of the gallery down to the
 * last of them for the address bar: Back from an image then rebuilds the gallery that far.
 */
function nextCards(
  c: Context<SignedInEnv>,
  result: GalleryPageResult,
  asked: GalleryQuery,
  listing: { basePath: string; search: string; canChange: boolean },
) {
  if (result.lastCursor) {
    const href = galleryHref(listing.basePath, {
      order: result.order,
      search: listing.search,
      upto: result.lastCursor,
    });
    c.header('HX-Replace-Url', href);
  }
  return fragment(c, <GalleryCards {...result} {...listing} previousSortAt={asked.after?.sort ?? null} />);
}
