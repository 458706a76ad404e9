import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppEnv } from '../env.js';
import { statusOf } from '../http-errors.js';
import { requireUser, signedIn } from '../middleware/session.js';
import { can } from '../policy.js';
import { DomainError } from '../services/errors.js';
import type { Image } from '../services/images.js';
import type { User } from '../services/users.js';
import { ConfirmBulkDeletePage, ConfirmDeletePage, ImagePage, type ImagePageProps } from '../views/image.js';
import { formFields, page, selectedIds } from './render.js';

export const imageRoutes = new Hono<AppEnv>();

/** The image page, with the owner's share links when the viewer may manage them. */
export async function renderImage(
  c: Context<AppEnv>,
  user: User,
  image: Image,
  extra: Pick<ImagePageProps, 'notice' | 'error' | 'newShareUrl'> = {},
  status: ContentfulStatusCode = 200,
) {
  const { images, shares } = c.var.services;
  const links = can(user, 'image.change', image)
    ? shares.listForImage(image).map((link) => ({ link, state: shares.stateOf(link) }))
    : [];
  return page(
    c,
    <ImagePage
      user={user}
      image={image}
      displayUrl={await images.displayUrl(image)}
      links={links}
      {...extra}
    />,
    status,
  );
}

imageRoutes.get('/images/:id', requireUser, (c) => {
  const { user } = signedIn(c);
  const image = c.var.services.images.getForUser(user, c.req.param('id'));
  const notice = c.req.query('uploaded')
    ? 'Uploaded.'
    : c.req.query('replaced')
      ? 'File replaced.'
      : c.req.query('revoked')
        ? 'Link revoked.'
        : undefined;
  return renderImage(c, user, image, { notice });
});

imageRoutes.get('/images/:id/download', requireUser, async (c) => {
  const { user } = signedIn(c);
  c.header('Cache-Control', 'no-store');
  return c.redirect(await c.var.services.images.downloadUrl(user, c.req.param('id')), 303);
});

imageRoutes.post('/images/:id/rename', requireUser, async (c) => {
  const { user, actor } = signedIn(c);
  const { images } = c.var.services;
  const form = await formFields(c);
  try {
    const image = images.rename(actor, c.req.param('id'), form.title ?? '');
    return c.redirect(`/images/${image.id}`, 303);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const image = images.getForUser(user, c.req.param('id'));
    return renderImage(c, user, image, { error: err.message }, statusOf(err));
  }
});

imageRoutes.post('/images/:id/visibility', requireUser, async (c) => {
  const form = await formFields(c);
  const image = c.var.services.images.setShared(signedIn(c).actor, c.req.param('id'), form.shared === '1');
  return c.redirect(`/images/${image.id}`, 303);
});

imageRoutes.get('/images/:id/delete', requireUser, (c) => {
  const { user } = signedIn(c);
  return page(
    c,
    <ConfirmDeletePage user={user} image={c.var.services.images.getForChange(user, c.req.param('id'))} />,
  );
});

imageRoutes.post('/images/:id/delete', requireUser, async (c) => {
  await c.var.services.images.delete(signedIn(c).actor, [c.req.param('id')]);
  // htmx removes the card in place; a plain form goes back to the gallery with a message.
  if (c.req.header('HX-Request')) return c.body(null, 200);
  return c.redirect('/?deleted=1', 303);
});

imageRoutes.post('/images/delete', requireUser, async (c) => {
  const { user, actor } = signedIn(c);
  const { ids, body } = await selectedIds(c);
  if (body.confirm !== 'yes') {
    const images = ids.map((id) => c.var.services.images.getForChange(user, id));
    return page(c, <ConfirmBulkDeletePage user={user} images={images} />);
  }
  const count = await c.var.services.images.delete(actor, ids);
  return c.redirect(`/?deleted=${count}`, 303);
});
