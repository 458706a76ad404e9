import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppEnv } from '../env.js';
import { can } from '../policy.js';
import type { Actor } from '../services/audit.js';
import { Forbidden, Unauthenticated } from '../services/errors.js';
import type { Session } from '../services/sessions.js';
import type { User } from '../services/users.js';
import { clientIp } from './client-ip.js';

export function sessionCookieName(isSecure: boolean): string {
  // __Host- makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
  return isSecure ? '__Host-s3g_session' : 's3g_session';
}

export function setSessionCookie(c: Context<AppEnv>, token: string, expiresAt: number): void {
  const { isSecureOrigin } = c.var.config;
  setCookie(c, sessionCookieName(isSecureOrigin), token, {
    httpOnly: true,
    sameSite: 'Lax',
    secure: isSecureOrigin,
    path: '/',
    maxAge: Math.max(0, Math.floor((expiresAt - c.var.services.clock()) / 1000)),
  });
}

export function clearSessionCookie(c: Context<AppEnv>): void {
  const { isSecureOrigin } = c.var.config;
  deleteCookie(c, sessionCookieName(isSecureOrigin), { path: '/', secure: isSecureOrigin });
}

/** Loads the signed-in user (or null) for every request; refreshes the cookie when the session slid. */
export const loadSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = getCookie(c, sessionCookieName(c.var.config.isSecureOrigin));
  const valid = token ? c.var.services.sessions.validate(token) : null;
  c.set('user', valid?.user ?? null);
  c.set('session', valid?.session ?? null);
  if (token && !valid) clearSessionCookie(c);
  if (token && valid?.wasRefreshed) setSessionCookie(c, token, valid.session.expiresAt);
  await next();
};

/** Logged-out visitors go to the login page and come back afterwards. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.var.user) {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      const url = new URL(c.req.url);
      return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    return c.redirect('/login', 303);
  }
  await next();
};

/** Logged-out visitors log in first; a signed-in user the policy refuses the action gets a 403. */
export function requireCan(action: 'admin' | 'image.upload' | 'share.create'): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const user = c.var.user;
    if (!user) return requireUser(c, next);
    if (!can(user, action)) throw new Forbidden('You do not have permission to do that.');
    await next();
  };
}

/**
 * The signed-in user and session, for routes behind requireUser or requireCan, and the actor the
 * services write into the audit rows of this request's changes.
 */
export function signedIn(c: Context<AppEnv>): { user: User; session: Session; actor: Actor } {
  const { user, session } = c.var;
  if (!user || !session) throw new Unauthenticated('Please log in.');
  return { user, session, actor: { user, ip: clientIp(c) } };
}
