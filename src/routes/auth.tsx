import { Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { EMAIL_MAX } from '../limits.js';
import { clientIp } from '../middleware/client-ip.js';
import { clearSessionCookie, requireUser, setSessionCookie, signedIn } from '../middleware/session.js';
import { UserError } from '../services/errors.js';
import { SESSION_TTL_MS } from '../services/sessions.js';
import { LoginPage, PasswordPage, SignupPage } from '../views/auth.js';
import { audit, auditThrottled } from './audit.js';
import { readDeviceCookie, setDeviceCookie } from './device-cookie.js';
import { formError, formFields, page, safeNext } from './render.js';

export const authRoutes = new Hono<AppEnv>();

authRoutes.get('/signup', (c) => {
  if (c.var.user) return c.redirect('/', 303);
  const invite = c.req.query('invite') || undefined;
  const { users } = c.var.services;
  const isFirstUser = !users.hasUsers();
  try {
    users.checkSignupAllowed(invite);
    return page(c, <SignupPage invite={invite} isFirstUser={isFirstUser} />);
  } catch (err) {
    return formError(c, err, (message) => <SignupPage refusal={message} isFirstUser={false} />);
  }
});

authRoutes.post('/signup', async (c) => {
  const form = await formFields(c);
  const invite = form.invite || undefined;
  try {
    const { token, user, deviceToken } = await c.var.services.login.signUp({
      email: form.email ?? '',
      password: form.password ?? '',
      ...(invite ? { inviteToken: invite } : {}),
      ip: clientIp(c),
    });
    audit(c, 'signup', {
      actor: user,
      target: user.id,
      detail: `role ${user.role}${invite ? ', by invite' : ''}`,
    });
    setSessionCookie(c, token, c.var.services.clock() + SESSION_TTL_MS);
    setDeviceCookie(c, 'login', '/login', deviceToken);
    return c.redirect('/', 303);
  } catch (err) {
    if (err instanceof UserError && err.status === 429) auditThrottled(c, 'sign-up', form.email ?? null);
    return formError(c, err, (message) =>
      err instanceof UserError && err.status === 403 ? (
        <SignupPage refusal={message} isFirstUser={false} />
      ) : (
        <SignupPage
          email={form.email}
          invite={invite}
          error={message}
          isFirstUser={!c.var.services.users.hasUsers()}
        />
      ),
    );
  }
});

authRoutes.get('/login', (c) => {
  const next = safeNext(c.req.query('next'), c.var.config.appOrigin);
  if (c.var.user) return c.redirect(next, 303);
  const notice = c.req.query('loggedOut') ? 'You have been logged out.' : undefined;
  return page(c, <LoginPage next={next} notice={notice} />);
});

authRoutes.post('/login', async (c) => {
  const form = await formFields(c);
  const next = safeNext(form.next, c.var.config.appOrigin);
  try {
    const { token, user, deviceToken } = await c.var.services.login.logIn({
      email: form.email ?? '',
      password: form.password ?? '',
      ip: clientIp(c),
      deviceToken: readDeviceCookie(c, 'login'),
    });
    audit(c, 'login', { actor: user });
    setSessionCookie(c, token, c.var.services.clock() + SESSION_TTL_MS);
    setDeviceCookie(c, 'login', '/login', deviceToken);
    return c.redirect(next, 303);
  } catch (err) {
    if (err instanceof UserError && err.status === 429) auditThrottled(c, 'login', form.email ?? null);
    else if (err instanceof UserError && err.status !== 503) {
      // The typed email is kept as the target, not as an actor: it may not be anyone's.
      audit(c, 'login_failed', {
        actor: null,
        target: (form.email ?? '').trim().slice(0, EMAIL_MAX),
        detail: err.message,
      });
    }
    return formError(c, err, (message) => <LoginPage email={form.email} next={next} error={message} />);
  }
});

authRoutes.post('/logout', (c) => {
  const session = c.var.session;
  if (session) {
    c.var.services.sessions.invalidate(session.id);
    audit(c, 'logout');
  }
  clearSessionCookie(c);
  return c.redirect('/login?loggedOut=1', 303);
});

authRoutes.get('/account/password', requireUser, (c) => {
  const { user } = signedIn(c);
  return page(c, <PasswordPage user={user} />);
});

authRoutes.post('/account/password', requireUser, async (c) => {
  const { user, session } = signedIn(c);
  const form = await formFields(c);
  try {
    const { deviceToken } = await c.var.services.login.changePassword({
      user,
      sessionId: session.id,
      currentPassword: form.current ?? '',
      newPassword: form.password ?? '',
      ip: clientIp(c),
    });
    audit(c, 'password_change');
    setDeviceCookie(c, 'login', '/login', deviceToken);
    return page(
      c,
      <PasswordPage user={user} notice="Password changed. Your other sessions have been signed out." />,
    );
  } catch (err) {
    if (err instanceof UserError && err.status === 429) auditThrottled(c, 'password change', user.email);
    return formError(c, err, (message) => <PasswordPage user={user} error={message} />);
  }
});
