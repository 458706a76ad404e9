import { Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { requireRole, signedIn } from '../middleware/session.js';
import { parseRole } from '../services/invites.js';
import { InvitesPage } from '../views/admin.js';
import { formError, formFields, page } from './render.js';

export const adminRoutes = new Hono<AppEnv>();

adminRoutes.use('/admin/*', requireRole('admin'));

adminRoutes.get('/admin/invites', (c) => {
  const { services, config } = c.var;
  return page(
    c,
    <InvitesPage user={signedIn(c).user} invites={services.invites.list()} signup={config.signup} />,
  );
});

adminRoutes.post('/admin/invites', async (c) => {
  const { services, config } = c.var;
  const { user } = signedIn(c);
  const form = await formFields(c);
  try {
    const { token } = services.invites.create(parseRole(form.role), user.id);
    const newLink = `${config.appOrigin}/signup?invite=${encodeURIComponent(token)}`;
    return page(
      c,
      <InvitesPage user={user} invites={services.invites.list()} signup={config.signup} newLink={newLink} />,
      201,
    );
  } catch (err) {
    return formError(c, err, (message) => (
      <InvitesPage user={user} invites={services.invites.list()} signup={config.signup} error={message} />
    ));
  }
});

adminRoutes.post('/admin/invites/:id/revoke', (c) => {
  c.var.services.invites.revoke(c.req.param('id'));
  return c.redirect('/admin/invites', 303);
});
