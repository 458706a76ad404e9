import { Hono } from 'hono';
import { z } from 'zod';
import type { SignedInEnv } from '../env.js';
import { actorOf, requireUser } from '../middleware/session.js';
import { KEY_SCOPES } from '../services/access-keys.js';
import { Invalid } from '../services/errors.js';
import { ConfirmRevokeKeyPage, NewAccessKeyPage } from '../views/access-keys.js';
import { accountPage } from './account-page.js';
import { redirectShowingLink, takeNewSecret } from './new-link.js';
import { withNotice } from './notices.js';
import { page } from './render.js';
import { form, text } from './validate.js';

/** A person's own S3 keys to the embedded store (see services/access-keys.ts), under /account/keys. */
export const accessKeyRoutes = new Hono<SignedInEnv>();
accessKeyRoutes.use(requireUser);

accessKeyRoutes.post(
  '/',
  form(z.object({ name: text, scope: z.enum(KEY_SCOPES, { error: 'Choose what the key can do.' }) })),
  async (c) => {
    const { accessKeys } = c.var.services;
    try {
      const { key, secret } = await accessKeys.create(actorOf(c), c.req.valid('form'));
      return redirectShowingLink(c, { id: key.id, token: secret }, '/account/keys/new');
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      return page(
        c,
        await accountPage(c, { keyError: err.message, keyScope: c.req.valid('form').scope }),
        400,
      );
    }
  },
);

/** The key just made, with its secret, once: a reload (or anyone else) finds the account page. */
accessKeyRoutes.get('/new', async (c) => {
  const { accessKeys } = c.var.services;
  const made = takeNewSecret(c);
  const shown = made && (await accessKeys.newKeyOf(c.var.user, made.id, made.token));
  if (!shown || !accessKeys.store) return c.redirect(`${withNotice('/account', 'keyShownOnce')}#keys`, 303);
  // The secret is on this page only: nothing may keep a copy of it.
  c.header('Cache-Control', 'no-store');
  return page(
    c,
    <NewAccessKeyPage user={c.var.user} created={shown.key} secret={shown.secret} store={accessKeys.store} />,
  );
});

/** Revoking asks first (it cannot be undone); the confirmation's own form says `confirm=yes`. */
accessKeyRoutes.post('/:id/revoke', form(z.object({ confirm: text })), async (c) => {
  const { accessKeys } = c.var.services;
  const id = c.req.param('id');
  const revoked = `${withNotice('/account', 'keyRevoked')}#keys`;
  if (c.req.valid('form').confirm !== 'yes') {
    const key = await accessKeys.get(c.var.user, id);
    if (key.revokedAt !== null) return c.redirect(revoked, 303);
    return page(c, <ConfirmRevokeKeyPage user={c.var.user} accessKey={key} />);
  }
  await accessKeys.revoke(actorOf(c), id);
  return c.redirect(revoked, 303);
});
