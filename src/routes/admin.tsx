import { type Context, Hono } from 'hono';
import { stream } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { SignedInEnv } from '../env.js';
import { statusOf } from '../http-errors.js';
import { actorOf, requireCan } from '../middleware/session.js';
import { csvLine } from '../services/audit.js';
import { idCursor } from '../services/cursors.js';
import { Conflict, DomainError, Invalid, NotFound } from '../services/errors.js';
import { parseRole } from '../services/invites.js';
import { InvitesPage } from '../views/admin.js';
import { AuditPage } from '../views/audit.js';
import { ChangesPage } from '../views/changes.js';
import { PeoplePage, PersonPage } from '../views/people.js';
import { ProcessingPage } from '../views/processing.js';
import { noticeOf, withNotice } from './notices.js';
import { formError, page } from './render.js';
import { cursor, form, query, text } from './validate.js';

/** The admin area (`/admin/...`): people, invites, changes and the audit log; admins only. */
export const adminRoutes = new Hono<SignedInEnv>().use(requireCan('admin'));

adminRoutes.get('/', async (c) => {
  const notice = noticeOf(c, { deleted: 'Account deleted.' });
  const people = await c.var.services.people.list();
  return page(c, <PeoplePage user={c.var.user} people={people} notice={notice} />);
});

async function personPage(
  c: Context<SignedInEnv>,
  id: string,
  extra: { notice?: string | undefined; error?: string } = {},
  status: ContentfulStatusCode = 200,
) {
  const person = (await c.var.services.people.list()).find((p) => p.id === id);
  if (!person) throw new NotFound('There is no such user.');
  return page(c, <PersonPage user={c.var.user} person={person} {...extra} />, status);
}

const PERSON_NOTICES = new Map([
  ['role', 'Role changed.'],
  ['disable', 'Account disabled and signed out everywhere.'],
  ['enable', 'Account enabled.'],
  ['quota', 'Quota saved.'],
]);

adminRoutes.get('/users/:id', (c) => {
  const notice = noticeOf(c, { done: (done) => PERSON_NOTICES.get(done) });
  return personPage(c, c.req.param('id'), notice ? { notice } : {});
});

/** A refusal shown on the person's page; any other (a 404, say) answers with its own page. */
const isPersonRefusal = (err: unknown): err is DomainError =>
  err instanceof Invalid || err instanceof Conflict;

/** Runs an admin action; a refusal re-renders the person's page with the message. */
async function act(c: Context<SignedInEnv>, done: string, work: () => void | Promise<void>) {
  const id = c.req.param('id') ?? '';
  try {
    await work();
    return c.redirect(withNotice(`/admin/users/${id}`, 'done', done), 303);
  } catch (err) {
    if (!isPersonRefusal(err)) throw err;
    return personPage(c, id, { error: err.message }, statusOf(err));
  }
}

adminRoutes.post('/users/:id/role', form(z.object({ role: text })), (c) =>
  act(c, 'role', async () => {
    const role = parseRole(c.req.valid('form').role);
    await c.var.services.people.changeRole(actorOf(c), c.req.param('id'), role);
  }),
);

for (const [path, isDisabled] of [
  ['disable', true],
  ['enable', false],
] as const) {
  adminRoutes.post(`/users/:id/${path}`, (c) =>
    act(c, path, async () => {
      await c.var.services.people.setDisabled(actorOf(c), c.req.param('id'), isDisabled);
    }),
  );
}

adminRoutes.post('/users/:id/quota', form(z.object({ mib: text, images: text })), (c) =>
  act(c, 'quota', async () => {
    await c.var.services.people.setQuota(actorOf(c), c.req.param('id'), c.req.valid('form'));
  }),
);

adminRoutes.post('/users/:id/delete', form(z.object({ confirm: text })), async (c) => {
  const id = c.req.param('id');
  try {
    await c.var.services.people.deleteUser(actorOf(c), id, c.req.valid('form').confirm);
    return c.redirect(withNotice('/admin', 'deleted'), 303);
  } catch (err) {
    if (!isPersonRefusal(err)) throw err;
    return personPage(c, id, { error: err.message }, statusOf(err));
  }
});

adminRoutes.get('/changes', query(z.object(cursor(idCursor))), async (c) => {
  const { notifications } = c.var.services;
  const result = await notifications.page(c.req.valid('query').cursor);
  return page(c, <ChangesPage user={c.var.user} {...result} status={await notifications.status()} />);
});

/** The audit log's filter, as its form and its page links send it. */
const auditFilter = z.object({ email: text, action: text, from: text, to: text });

adminRoutes.get('/audit', query(auditFilter.extend(cursor(idCursor))), async (c) => {
  const { user } = c.var;
  // A broken page link is the error page (the validator's); a filter the form can fix is shown on the form.
  const { cursor: after, ...filter } = c.req.valid('query');
  const { auditRetentionDays } = c.var.config;
  try {
    const result = await c.var.services.audit.page(filter, after);
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

adminRoutes.get('/audit.csv', query(auditFilter), async (c) => {
  const chunks = c.var.services.audit.all(c.req.valid('query')); // validates the filter before the first byte
  const first = await chunks.next();
  c.header('Content-Type', 'text/csv; charset=utf-8');
  c.header('Content-Disposition', 'attachment; filename="s3-gallery-audit.csv"');
  c.header('Cache-Control', 'no-store');
  return stream(c, async (out) => {
    await out.write(
      csvLine(['id', 'time_utc', 'actor_id', 'actor_email', 'action', 'target', 'detail', 'ip']),
    );
    for (let chunk = first; !chunk.done; chunk = await chunks.next()) {
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

/** The most failed images the processing page lists. */
const FAILED_SHOWN = 100;

adminRoutes.get('/processing', async (c) => {
  const { services } = c.var;
  const [status, failed, people] = await Promise.all([
    services.processingStatus(),
    services.images.listFailed(FAILED_SHOWN),
    services.people.list(),
  ]);
  const emails = new Map(people.map((p) => [p.id, p.email]));
  const rows = failed.map((image) => ({ image, ownerEmail: emails.get(image.ownerId) ?? '—' }));
  return page(c, <ProcessingPage user={c.var.user} status={status} failed={rows} />);
});

adminRoutes.get('/invites', async (c) => {
  const { services, config } = c.var;
  const invites = await services.invites.list();
  return page(c, <InvitesPage user={c.var.user} invites={invites} signup={config.signup} />);
});

adminRoutes.post('/invites', form(z.object({ role: text })), async (c) => {
  const { services, config, user } = c.var;
  try {
    const { token } = await services.invites.create(actorOf(c), parseRole(c.req.valid('form').role));
    const newLink = `${config.appOrigin}/signup?invite=${encodeURIComponent(token)}`;
    const invites = await services.invites.list();
    return page(
      c,
      <InvitesPage user={user} invites={invites} signup={config.signup} newLink={newLink} />,
      201,
    );
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const invites = await services.invites.list();
    return formError(c, err, (message) => (
      <InvitesPage user={user} invites={invites} signup={config.signup} error={message} />
    ));
  }
});

adminRoutes.post('/invites/:id/revoke', async (c) => {
  await c.var.services.invites.revoke(actorOf(c), c.req.param('id'));
  return c.redirect('/admin/invites', 303);
});
