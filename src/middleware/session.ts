import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppEnv, SignedInEnv } from '../env.js';
import { can } from '../policy.js';
import { safeNext } from '../routes/render.js';
import type { Actor } from '../services/audit.js';
import { Forbidden } from '../services/errors.js';
import { clientIp } from './client-ip.js';

function sessionCookieName(isSecure: boolean): string {
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
  const valid = token ? await c.var.services.sessions.validate(token, { ip: clientIp(c) }) : null;
  c.set('user', valid?.user ?? null);
  c.set('session', valid?.session ?? null);
  if (token && !valid) clearSessionCookie(c);
  if (token && valid?.wasRefreshed) setSessionCookie(c, token, valid.session.expiresAt);
  await next();
};

/**
 * Logged-out visitors go to the login page and come back afterwards. Past this guard `c.var.user`
 * and `c.var.session` are set, which is what SignedInEnv says: put it in front of a route (or a
 * whole feature sub-app) and its handlers read them without checking again.
 */
export const requireUser: MiddlewareHandler<SignedInEnv> = async (c, next) => {
  // Until this guard has run, SignedInEnv is a promise: the variables are those loadSession set.
  const { user, session } = c.var as AppEnv['Variables'];
  if (!user || !session) {
    if (c.req.header('HX-Request')) {
      // htmx would follow a redirect and swap the login page into the part of the page it asked
      // for: the whole page goes to the login instead, and back to where the person was after it.
      const back = safeNext(c.req.header('HX-Current-URL'), c.var.config.appOrigin);
      c.header('HX-Redirect', back === '/' ? '/login' : `/login?next=${encodeURIComponent(back)}`);
      return c.body(null, 401);
    }
    if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      const url = new URL(c.req.url);
      return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    return c.redirect('/login', 303);
  }
  await next();
};

/** As requireUser; then a user the policy does not allow the action gets a 403. */
export function requireCan(
  action: 'admin' | 'image.upload' | 'share.create' | 'album.create',
): MiddlewareHandler<SignedInEnv> {
  return (c, next) =>
    requireUser(c, async () => {
      if (!can(c.var.user, action)) throw new Forbidden('You do not have permission to do that.');
      await next();
    });
}

/** Who is making this request's changes, as the services write it into their audit rows. */
export function actorOf(c: Context<SignedInEnv>): Actor {
  return { user: c.var.user, ip: clientIp(c) };
}
