import { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../env.js';
import { clientIp } from '../middleware/client-ip.js';
import { actorOf, clearSessionCookie, requireUser, setSessionCookie } from '../middleware/session.js';
import { Forbidden, NotFound, Throttled } from '../services/errors.js';
import { SESSION_TTL_MS } from '../services/sessions.js';
import { LoginPage, PasswordPage, SignupPage } from '../views/auth.js';
import { accountPage } from './account-page.js';
import { auditThrottled } from './audit.js';
import { readDeviceCookie, setDeviceCookie } from './device-cookie.js';
import { noticeOf, withNotice } from './notices.js';
import { formError, page, safeNext } from './render.js';
import { form, query, text } from './validate.js';

/** Signing up, in and out, and the account's password: pages at the top level. */
export const authRoutes = new Hono<AppEnv>();

const credentials = z.object({ email: text, password: text });

authRoutes.get('/signup', query(z.object({ invite: text })), async (c) => {
  if (c.var.user) return c.redirect('/', 303);
  const invite = c.req.valid('query').invite || undefined;
  const { users } = c.var.services;
  const isFirstUser = !(await users.hasUsers());
  try {
    await users.checkSignupAllowed(invite);
    return page(c, <SignupPage invite={invite} isFirstUser={isFirstUser} />);
  } catch (err) {
    return formError(c, err, (message) => <SignupPage refusal={message} isFirstUser={false} />);
  }
});

authRoutes.post('/signup', form(credentials.extend({ invite: text })), async (c) => {
  const input = c.req.valid('form');
  const invite = input.invite || undefined;
  try {
    const { token, deviceToken } = await c.var.services.login.signUp({
      email: input.email,
      password: input.password,
      ...(invite ? { inviteToken: invite } : {}),
      ip: clientIp(c),
      userAgent: c.req.header('User-Agent'),
    });
    setSessionCookie(c, token, c.var.services.clock() + SESSION_TTL_MS);
    setDeviceCookie(c, 'login', '/login', deviceToken);
    return c.redirect('/', 303);
  } catch (err) {
    if (err instanceof Throttled) await auditThrottled(c, 'sign-up', input.email);
    const isFirstUser = !(await c.var.services.users.hasUsers());
    return formError(c, err, (message) =>
      err instanceof Forbidden ? (
        <SignupPage refusal={message} isFirstUser={false} />
      ) : (
        <SignupPage email={input.email} invite={invite} error={message} isFirstUser={isFirstUser} />
      ),
    );
  }
});

authRoutes.get('/login', query(z.object({ next: text })), async (c) => {
  const next = safeNext(c.req.valid('query').next, c.var.config.appOrigin);
  if (c.var.user) return c.redirect(next, 303);
  // A fresh install has no one to log in: its first visitor creates the administrator.
  if (!(await c.var.services.users.hasUsers())) return c.redirect('/signup', 303);
  const notice = noticeOf(c, { loggedOut: 'You have been logged out.' });
  return page(c, <LoginPage next={next} notice={notice} />);
});

authRoutes.post('/login', form(credentials.extend({ next: text })), async (c) => {
  const input = c.req.valid('form');
  const next = safeNext(input.next, c.var.config.appOrigin);
  try {
    const { token, deviceToken } = await c.var.services.login.logIn({
      email: input.email,
      password: input.password,
      ip: clientIp(c),
      userAgent: c.req.header('User-Agent'),
      deviceToken: readDeviceCookie(c, 'login'),
    });
    setSessionCookie(c, token, c.var.services.clock() + SESSION_TTL_MS);
    setDeviceCookie(c, 'login', '/login', deviceToken);
    return c.redirect(next, 303);
  } catch (err) {
    if (err instanceof Throttled) await auditThrottled(c, 'login', input.email);
    return formError(c, err, (message) => <LoginPage email={input.email} next={next} error={message} />);
  }
});

authRoutes.post('/logout', async (c) => {
  const { user, session } = c.var;
  if (user && session) await c.var.services.login.logOut({ user, ip: clientIp(c) }, session.id);
  clearSessionCookie(c);
  return c.redirect(withNotice('/login', 'loggedOut'), 303);
});

authRoutes.get('/account', requireUser, async (c) => {
  const notice = noticeOf(c, {
    ended: 'That browser is signed out.',
    endedOthers: (n) =>
      `Signed out everywhere else (${n === '1' ? '1 browser' : `${Number(n) || 0} browsers`}).`,
  });
  const keyNotice = noticeOf(c, {
    keyRevoked: 'The key is revoked: requests signed with it are refused.',
    keyShownOnce:
      'A new key’s secret is shown once, on the page right after it is made. Lost it? Revoke that key and make another.',
  });
  return page(c, await accountPage(c, { notice, keyNotice }));
});

authRoutes.post('/account/sessions/end-others', requireUser, async (c) => {
  const ended = await c.var.services.login.endOtherSessions(actorOf(c), c.var.session.id);
  return c.redirect(withNotice('/account', 'endedOthers', ended), 303);
});

authRoutes.post('/account/sessions/:id/end', requireUser, async (c) => {
  // This browser signs out with Log out; someone else's session, or one already ended, is not found.
  const id = c.req.param('id');
  if (id === c.var.session.id || !(await c.var.services.login.endSession(actorOf(c), id))) {
    throw new NotFound('That session has ended already, or is not one of yours.');
  }
  return c.redirect(withNotice('/account', 'ended'), 303);
});

authRoutes.get('/account/password', requireUser, (c) => page(c, <PasswordPage user={c.var.user} />));

const passwordChange = z.object({ current: text, password: text });

authRoutes.post('/account/password', requireUser, form(passwordChange), async (c) => {
  const { user, session } = c.var;
  const input = c.req.valid('form');
  try {
    const { deviceToken } = await c.var.services.login.changePassword({
      user,
      sessionId: session.id,
      currentPassword: input.current,
      newPassword: input.password,
      ip: clientIp(c),
    });
    setDeviceCookie(c, 'login', '/login', deviceToken);
    return page(
      c,
      <PasswordPage user={user} notice="Password changed. Your other sessions have been signed out." />,
    );
  } catch (err) {
    if (err instanceof Throttled) await auditThrottled(c, 'password change', user.email);
    return formError(c, err, (message) => <PasswordPage user={user} error={message} />);
  }
});
