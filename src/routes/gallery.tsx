import { Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { requireRole, requireUser, signedIn } from '../middleware/session.js';
import { UserError } from '../services/errors.js';
import { GalleryCards, GalleryPage } from '../views/gallery.js';
import { page } from './render.js';

export const galleryRoutes = new Hono<AppEnv>();

galleryRoutes.get('/', requireUser, async (c) => {
  const { user } = signedIn(c);
  const cursor = c.req.query('cursor');
  const result = await c.var.services.images.listPage(user.id, cursor);
  if (c.req.header('HX-Request') && cursor)
    return c.html(<GalleryCards {...result} basePath="/" canChange />);
  const deleted = Number(c.req.query('deleted'));
  const notice = deleted > 0 ? `Deleted ${deleted} image${deleted === 1 ? '' : 's'}.` : undefined;
  return page(
    c,
    <GalleryPage user={user} owner={user} {...result} basePath="/" isFirstPage={!cursor} notice={notice} />,
  );
});

/** Admins can open anyone's gallery. */
galleryRoutes.get('/users/:id', requireRole('admin'), async (c) => {
  const { user } = signedIn(c);
  const owner = c.var.services.users.get(c.req.param('id'));
  if (!owner) throw new UserError(404, 'There is no such user.');
  const cursor = c.req.query('cursor');
  const result = await c.var.services.images.listPage(owner.id, cursor);
  const basePath = `/users/${owner.id}`;
  if (c.req.header('HX-Request') && cursor)
    return c.html(<GalleryCards {...result} basePath={basePath} canChange />);
  return page(
    c,
    <GalleryPage user={user} owner={owner} {...result} basePath={basePath} isFirstPage={!cursor} />,
  );
});
