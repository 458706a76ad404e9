import { type Context, Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { countOf } from '../format.js';
import { requireCan, requireUser, signedIn } from '../middleware/session.js';
import { can } from '../policy.js';
import { imageCursor, readCursor } from '../services/cursors.js';
import { NotFound } from '../services/errors.js';
import type { User } from '../services/users.js';
import { GalleryCards, GalleryPage } from '../views/gallery.js';
import { fragment, page } from './render.js';

export const galleryRoutes = new Hono<AppEnv>();

galleryRoutes.get('/', requireUser, (c) => {
  const { user } = signedIn(c);
  const deleted = Number(c.req.query('deleted'));
  const notice = deleted > 0 ? `Deleted ${countOf(deleted, 'image')}.` : undefined;
  return gallery(c, user, '/', notice);
});

/** Admins can open anyone's gallery. */
galleryRoutes.get('/users/:id', requireCan('admin'), (c) => {
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
    return fragment(
      c,
      <GalleryCards {...result} basePath={basePath} canChange={can(user, 'image.change')} />,
    );
  }
  return page(
    c,
    <GalleryPage
      user={user}
      owner={owner}
      {...result}
      basePath={basePath}
      isFirstPage={!after}
      notice={notice}
    />,
  );
}
