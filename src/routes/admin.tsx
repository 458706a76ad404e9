import { type Context, Hono } from 'hono';
import { stream } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppEnv } from '../env.js';
import { statusOf } from '../http-errors.js';
import { requireCan, signedIn } from '../middleware/session.js';
import { type AuditFilter, csvLine } from '../services/audit.js';
import { idCursor, readCursor } from '../services/cursors.js';
import { Conflict, type DomainError, Invalid, NotFound } from '../services/errors.js';
import { parseRole } from '../services/invites.js';
import { InvitesPage } from '../views/admin.js';
import { AuditPage } from '../views/audit.js';
import { ChangesPage } from '../views/changes.js';
import { PeoplePage, PersonPage } from '../views/people.js';
import { formError, formFields, page } from './render.js';

export const adminRoutes = new Hono<AppEnv>();

adminRoutes.use('/admin', requireCan('admin'));
adminRoutes.use('/admin/*', requireCan('admin'));

adminRoutes.get('/admin', (c) => {
  const notice = c.req.query('deleted') ? 'Account deleted.' : undefined;
  return page(
    c,
    <PeoplePage user={signedIn(c).user} people={c.var.services.people.list()} notice={notice} />,
  );
});

function personPage(
  c: Context<AppEnv>,
  id: string,
  extra: { notice?: string; error?: string } = {},
  status: ContentfulStatusCode = 200,
) {
  const person = c.var.services.people.list().find((p) => p.id === id);
  if (!person) throw new NotFound('There is no such user.');
  return page(c, <PersonPage user={signedIn(c).user} person={person} {...extra} />, status);
}

adminRoutes.get('/admin/users/:id', (c) => {
  const notices: Record<string, string> = {
    role: 'Role changed.',
    disable: 'Account disabled and signed out everywhere.',
    enable: 'Account enabled.',
    quota: 'Quota saved.',
  };
  const notice = notices[c.req.query('done') ?? ''];
  return personPage(c, c.req.param('id'), notice ? { notice } : {});
});

/** A refusal shown on the person's page; any other (a 404, say) answers with its own page. */
const isPersonRefusal = (err: unknown): err is DomainError =>
  err instanceof Invalid || err instanceof Conflict;

/** Runs an admin action; a refusal re-renders the person's page with the message. */
async function act(
  c: Context<AppEnv>,
  done: string,
  work: (form: Record<string, string>) => void | Promise<void>,
) {
  const id = c.req.param('id') ?? '';
  const form = await formFields(c);
  try {
    await work(form);
    return c.redirect(`/admin/users/${id}?done=${done}`, 303);
  } catch (err) {
    if (!isPersonRefusal(err)) throw err;
    return personPage(c, id, { error: err.message }, statusOf(err));
  }
}

adminRoutes.post('/admin/users/:id/role', (c) =>
  act(c, 'role', (form) => {
    c.var.services.people.changeRole(signedIn(c).actor, c.req.param('id'), parseRole(form.role));
  }),
);

for (const [path, isDisabled] of [
  ['disable', true],
  ['enable', false],
] as const) {
  adminRoutes.post(`/admin/users/:id/${path}`, (c) =>
    act(c, path, () => {
      c.var.services.people.setDisabled(signedIn(c).actor, c.req.param('id'), isDisabled);
    }),
  );
}

adminRoutes.post('/admin/users/:id/quota', (c) =>
  act(c, 'quota', (form) => {
    const limits = { mib: form.mib ?? '', images: form.images ?? '' };
    c.var.services.people.setQuota(signedIn(c).actor, c.req.param('id'), limits);
  }),
);

adminRoutes.post('/admin/users/:id/delete', async (c) => {
  const { actor } = signedIn(c);
  const id = c.req.param('id');
  const form = await formFields(c);
  try {
    await c.var.services.people.deleteUser(actor, id, form.confirm ?? '');
    return c.redirect('/admin?deleted=1', 303);
  } catch (err) {
    if (!isPersonRefusal(err)) throw err;
    return personPage(c, id, { error: err.message }, statusOf(err));
  }
});

adminRoutes.get('/admin/changes', (c) => {
  const { notifications } = c.var.services;
  const result = notifications.page(readCursor(idCursor, c.req.query('cursor')));
  return page(c, <ChangesPage user={signedIn(c).user} {...result} status={notifications.status()} />);
});

const auditFilter = (c: Context<AppEnv>): AuditFilter => ({
  email: c.req.query('email'),
  action: c.req.query('action'),
  from: c.req.query('from'),
  to: c.req.query('to'),
});

adminRoutes.get('/admin/audit', (c) => {
  const { user } = signedIn(c);
  const filter = auditFilter(c);
  const { auditRetentionDays } = c.var.config;
  // A broken page link is the error page; a filter the form can fix is shown on the form.
  const after = readCursor(idCursor, c.req.query('cursor'));
  try {
    const result = c.var.services.audit.page(filter, after);
    return page(c, <AuditPage user={user} filter={filter} retentionDays={auditRetentionDays} {...result} />);
  } catch (err) {
    return formError(c, err, (message) => (
      <AuditPage
        user={user}
        filter={filter}
        entries={[]}
        nextCursor={null}
        retentionDays={auditRetentionDays}
        error={message}
      />
    ));
  }
});

adminRoutes.get('/admin/audit.csv', (c) => {
  const filter = auditFilter(c);
  const chunks = c.var.services.audit.all(filter); // validates the filter before the first byte
  const first = chunks.next();
  c.header('Content-Type', 'text/csv; charset=utf-8');
  c.header('Content-Disposition', 'attachment; filename="s3-gallery-audit.csv"');
  c.header('Cache-Control', 'no-store');
  return stream(c, async (out) => {
    await out.write(
      csvLine(['id', 'time_utc', 'actor_id', 'actor_email', 'action', 'target', 'detail', 'ip']),
    );
    for (let chunk = first; !chunk.done; chunk = chunks.next()) {
      await out.write(
        chunk.value
          .map((e) =>
            csvLine([
              e.id,
              new Date(e.at).toISOString(),
              e.actorId,
              e.actorEmail,
              e.action,
              e.target,
              e.detail,
              e.ip,
            ]),
          )
          .join(''),
      );
    }
  });
});

adminRoutes.get('/admin/invites', (c) => {
  const { services, config } = c.var;
  return page(
    c,
    <InvitesPage user={signedIn(c).user} invites={services.invites.list()} signup={config.signup} />,
  );
});

adminRoutes.post('/admin/invites', async (c) => {
  const { services, config } = c.var;
  const { user, actor } = signedIn(c);
  const form = await formFields(c);
  try {
    const { token } = services.invites.create(actor, parseRole(form.role));
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
  c.var.services.invites.revoke(signedIn(c).actor, c.req.param('id'));
  return c.redirect('/admin/invites', 303);
});
