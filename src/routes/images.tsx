import { Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { requireUser, signedIn } from '../middleware/session.js';
import { UserError } from '../services/errors.js';
import { ConfirmBulkDeletePage, ConfirmDeletePage, ImagePage } from '../views/image.js';
import { formError, formFields, page } from './render.js';

export const imageRoutes = new Hono<AppEnv>();

imageRoutes.get('/images/:id', requireUser, async (c) => {
  const { user } = signedIn(c);
  const { images } = c.var.services;
  const image = images.getForUser(user, c.req.param('id'));
  const notice = c.req.query('uploaded')
    ? 'Uploaded.'
    : c.req.query('replaced')
      ? 'File replaced.'
      : undefined;
  return page(
    c,
    <ImagePage user={user} image={image} displayUrl={await images.displayUrl(image)} notice={notice} />,
  );
});

imageRoutes.get('/images/:id/download', requireUser, async (c) => {
  const { user } = signedIn(c);
  c.header('Cache-Control', 'no-store');
  return c.redirect(await c.var.services.images.downloadUrl(user, c.req.param('id')), 303);
});

imageRoutes.post('/images/:id/rename', requireUser, async (c) => {
  const { user } = signedIn(c);
  const { images } = c.var.services;
  const form = await formFields(c);
  try {
    const image = images.rename(user, c.req.param('id'), form.title ?? '');
    return c.redirect(`/images/${image.id}`, 303);
  } catch (err) {
    const image = images.getForUser(user, c.req.param('id'));
    const displayUrl = await images.displayUrl(image);
    return formError(c, err, (message) => (
      <ImagePage user={user} image={image} displayUrl={displayUrl} error={message} />
    ));
  }
});

imageRoutes.get('/images/:id/delete', requireUser, (c) => {
  const { user } = signedIn(c);
  return page(
    c,
    <ConfirmDeletePage user={user} image={c.var.services.images.getForUser(user, c.req.param('id'))} />,
  );
});

imageRoutes.post('/images/:id/delete', requireUser, async (c) => {
  const { user } = signedIn(c);
  await c.var.services.images.delete(user, [c.req.param('id')]);
  // htmx removes the card in place; a plain form goes back to the gallery with a message.
  if (c.req.header('HX-Request')) return c.body(null, 200);
  return c.redirect('/?deleted=1', 303);
});

imageRoutes.post('/images/delete', requireUser, async (c) => {
  const { user } = signedIn(c);
  const body = await c.req.parseBody({ all: true });
  const ids = [body.ids]
    .flat()
    .filter((v): v is string => typeof v === 'string')
    .slice(0, 500);
  if (ids.length === 0) throw new UserError(400, 'Select the images to delete first.');
  if (body.confirm !== 'yes') {
    const images = ids.map((id) => c.var.services.images.getForChange(user, id));
    return page(c, <ConfirmBulkDeletePage user={user} images={images} />);
  }
  const count = await c.var.services.images.delete(user, ids);
  return c.redirect(`/?deleted=${count}`, 303);
});
