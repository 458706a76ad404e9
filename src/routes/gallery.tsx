import { type Context, Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { countOf } from '../format.js';
import { requireRole, requireUser, signedIn } from '../middleware/session.js';
import { imageCursor, readCursor } from '../services/cursors.js';
import { NotFound } from '../services/errors.js';
import { canChangeImages } from '../services/images.js';
import type { User } from '../services/users.js';
import { GalleryCards, GalleryPage } from '../views/gallery.js';
import { cachedPage } from './page-cache.js';
import { fragment } from './render.js';

export const galleryRoutes = new Hono<AppEnv>();

galleryRoutes.get('/', requireUser, (c) => {
  const { user } = signedIn(c);
  const deleted = Number(c.req.query('deleted'));
  const notice = deleted > 0 ? `Deleted ${countOf(deleted, 'image')}.` : undefined;
  return gallery(c, user, '/', notice);
});

/** Admins can open anyone's gallery. */
galleryRoutes.get('/users/:id', requireRole('admin'), (c) => {
  const owner = c.var.services.users.get(c.req.param('id'));
  if (!owner) throw new NotFound('There is no such user.');
  return gallery(c, owner, `/users/${owner.id}`);
});

/** A page of the owner's gallery, or for htmx just the next cards. */
async function gallery(c: Context<AppEnv>, owner: User, basePath: string, notice?: string) {
  const { user } = signedIn(c);
  const after = readCursor(imageCursor, c.req.query('cursor'));
  const result = await c.var.services.images.listPage(owner.id, after);
  if (c.req.header('HX-Request') && after) {
    return fragment(c, <GalleryCards {...result} basePath={basePath} canChange={canChangeImages(user)} />);
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
