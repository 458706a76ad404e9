import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv, SignedInEnv } from '../env.js';
import { countOf } from '../format.js';
import { requireCan, requireUser } from '../middleware/session.js';
import { can } from '../policy.js';
import { type ImageCursor, imageCursor } from '../services/cursors.js';
import { NotFound } from '../services/errors.js';
import type { User } from '../services/users.js';
import { GalleryCards, GalleryPage, SharedGalleryPage } from '../views/gallery.js';
import { NOTHING_SELECTED, noticeOf } from './notices.js';
import { cachedPage } from './page-cache.js';
import { fragment } from './render.js';
import { cursor, query } from './validate.js';

/** The galleries: your own (`/`), the shared images (`/shared`), and for admins anyone's. */
export const galleryRoutes = new Hono<AppEnv>();

const pageLink = query(z.object(cursor(imageCursor)));

const galleryNotices = {
  deleted: (count: string) => {
    // Only a count a delete could have made: "1e400" would read "Infinity images".
    const n = /^\d{1,4}$/.test(count) ? Number(count) : 0;
    return n > 0 ? `Deleted ${countOf(n, 'image')}.` : undefined;
  },
  unselected: NOTHING_SELECTED,
};

galleryRoutes.get('/', requireUser, pageLink, (c) =>
  gallery(c, c.var.user, '/', c.req.valid('query').cursor, noticeOf(c, galleryNotices)),
);

galleryRoutes.get('/shared', requireUser, pageLink, async (c) => {
  const after = c.req.valid('query').cursor;
  const result = await c.var.services.images.listShared(after);
  if (c.req.header('HX-Request') && after) {
    return fragment(c, <GalleryCards {...result} basePath="/shared" canChange={false} />);
  }
  return cachedPage(c, SharedGalleryPage, { user: c.var.user, ...result, isFirstPage: !after });
});

galleryRoutes.get('/users/:id', requireCan('admin'), pageLink, async (c) => {
  const owner = await c.var.services.users.get(c.req.param('id'));
  if (!owner) throw new NotFound('There is no such user.');
  return gallery(c, owner, `/users/${owner.id}`, c.req.valid('query').cursor, noticeOf(c, galleryNotices));
});

/** A page of the owner's gallery, or for htmx just the next cards. */
async function gallery(
  c: Context<SignedInEnv>,
  owner: User,
  basePath: string,
  after: ImageCursor | null,
  notice?: string,
) {
  const { user } = c.var;
  const result = await c.var.services.images.listPage(owner.id, after);
  if (c.req.header('HX-Request') && after) {
    return fragment(
      c,
      <GalleryCards {...result} basePath={basePath} canChange={can(user, 'image.change')} />,
    );
  }
  return cachedPage(c, GalleryPage, {
    user,
    owner,
    ...result,
    basePath,
    isFirstPage: !after,
    notice,
  });
}
