import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { SignedInEnv } from '../env.js';
import { countOf } from '../format.js';
import { actorOf, requireCan, requireUser } from '../middleware/session.js';
import { NotFound } from '../services/errors.js';
import type { User } from '../services/users.js';
import { ConfirmDeleteForeverPage, TrashPage, trashHref } from '../views/trash.js';
import { nothingSelected, noticeOf, withNotice } from './notices.js';
import { page, safeNext } from './render.js';
import { form, text, tickedIds } from './validate.js';

/** Only a count an action here could have made: "1e400" would read "Infinity images". */
const countNotice = (sentence: (n: number) => string) => (value: string) => {
  const n = /^\d{1,4}$/.test(value) ? Number(value) : 0;
  return n > 0 ? sentence(n) : undefined;
};

/** The notices of the trash page, and of the galleries "Undo" goes back to. */
export const TRASH_NOTICES = {
  restored: countNotice((n) => `Restored ${countOf(n, 'image')}.`),
  deleted: countNotice((n) => `Deleted ${countOf(n, 'image')} for good.`),
  emptied: countNotice((n) => `The trash is empty: ${countOf(n, 'image')} deleted for good.`),
};

/** The trash (`/trash`) and what is done there; every route needs someone who may have images (members and admins). */
export const trashRoutes = new Hono<SignedInEnv>().use(requireUser, requireCan('image.upload'));

/** Someone's trash, for admins (`/users/:id/trash`). */
export const userTrashRoutes = new Hono<SignedInEnv>();

async function trashPage(c: Context<SignedInEnv>, owner: User) {
  const { user, services, config } = c.var;
  const { items, total } = await services.images.trashOf(user, owner);
  return page(
    c,
    <TrashPage
      user={user}
      owner={owner}
      items={items}
      total={total}
      trashDays={config.trashDays}
      now={services.clock()}
      notice={noticeOf(c, TRASH_NOTICES)}
    />,
  );
}

trashRoutes.get('/', (c) => trashPage(c, c.var.user));

userTrashRoutes.get('/:id/trash', requireUser, requireCan('admin'), async (c) => {
  const owner = await c.var.services.users.get(c.req.param('id'));
  if (!owner) throw new NotFound('There is no such user.');
  return trashPage(c, owner);
});

/** Where a form here goes back to: the page it names (the trash, a gallery), else your trash. */
const backOf = (c: Context<SignedInEnv>, back: string) =>
  back ? safeNext(back, c.var.config.appOrigin) : '/trash';

trashRoutes.post('/restore', form(z.object({ ids: tickedIds, back: text })), async (c) => {
  const { ids, back } = c.req.valid('form');
  if (ids.length === 0) return c.redirect(nothingSelected(backOf(c, back), c.var.config.appOrigin), 303);
  const count = await c.var.services.images.restore(actorOf(c), ids);
  return c.redirect(withNotice(backOf(c, back), 'restored', count), 303);
});

trashRoutes.post('/delete', form(z.object({ ids: tickedIds, back: text, confirm: text })), async (c) => {
  const { ids, back, confirm } = c.req.valid('form');
  const { user, services } = c.var;
  if (ids.length === 0) return c.redirect(nothingSelected(backOf(c, back), c.var.config.appOrigin), 303);
  if (confirm !== 'yes') {
    const images = await services.images.getAllForChange(user, ids, 'any');
    return page(
      c,
      <ConfirmDeleteForeverPage
        user={user}
        titles={images.map((i) => i.title)}
        ids={images.map((i) => i.id)}
        ownerId={images[0]?.ownerId ?? user.id}
        back={backOf(c, back)}
      />,
    );
  }
  const count = await services.images.deleteForever(actorOf(c), ids);
  // From an image's own page, that page is gone: back to its owner's trash.
  const target = /^\/images\//.test(backOf(c, back)) ? '/trash' : backOf(c, back);
  return c.redirect(withNotice(target, 'deleted', count), 303);
});

trashRoutes.post('/empty', form(z.object({ owner: text, confirm: text })), async (c) => {
  const { owner: ownerId, confirm } = c.req.valid('form');
  const { user, services } = c.var;
  const owner = ownerId === user.id ? user : await services.users.get(ownerId);
  if (!owner) throw new NotFound('There is no such user.');
  if (confirm !== 'yes') {
    const { items, total } = await services.images.trashOf(user, owner);
    return page(
      c,
      <ConfirmDeleteForeverPage
        user={user}
        titles={items.map((i) => i.card.title)}
        count={total}
        ids={[]}
        ownerId={owner.id}
        back={trashHref(user, owner.id)}
      />,
    );
  }
  const count = await services.images.emptyTrash(actorOf(c), owner.id);
  return c.redirect(withNotice(trashHref(user, owner.id), 'emptied', count), 303);
});

/** "Undo" after a delete: what that one press moved to the trash (`at`) comes back. */
trashRoutes.post('/undo', form(z.object({ owner: text, at: text, back: text })), async (c) => {
  const { owner, at, back } = c.req.valid('form');
  const when = /^\d{1,16}$/.test(at) ? Number(at) : Number.NaN;
  const count = Number.isSafeInteger(when)
    ? await c.var.services.images.undoTrash(actorOf(c), owner, when)
    : 0;
  return c.redirect(withNotice(backOf(c, back || '/'), 'restored', count), 303);
});
