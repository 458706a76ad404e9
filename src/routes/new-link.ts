import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppContext, SignedInEnv } from '../env.js';

/**
 * A share link is shown once, on the page the owner lands on after making it (POST–redirect–GET:
 * a reload neither shows it again nor makes a second one). Only the token's hash is stored, so
 * the token rides to that page in a cookie that lives minutes, is sent by no other site and read by
 * no script, and is deleted as it is shown. The page shows it only if it is the token of a link
 * of the signed-in owner: a cookie set by anyone else shows nothing. A new S3 access key's secret
 * rides the same way (its id and secret for the link's id and token).
 */
const COOKIE = 's3g_new_link';
const MAX_AGE_SECONDS = 600;

/** A redirect's path without its query: the page that takes the link matches it on its path. */
const pagePath = (path: string) => path.split('?')[0] ?? path;

const safeDecode = (text: string) => {
  try {
    return decodeURIComponent(text);
  } catch {
    return '';
  }
};

const cookieName = (c: AppContext) => (c.var.config.isSecureOrigin ? `__Secure-${COOKIE}` : COOKIE);

/** Answers the POST that made a link: to `path`, which shows it once. */
export function redirectShowingLink(c: AppContext, link: { id: string; token: string }, path: string) {
  // The page it is for rides along: another page opened meanwhile (another tab, a poll) leaves it.
  setCookie(c, cookieName(c), `${link.id}.${link.token}.${encodeURIComponent(pagePath(path))}`, {
    httpOnly: true,
    sameSite: 'Strict',
    secure: c.var.config.isSecureOrigin,
    path: '/',
    maxAge: MAX_AGE_SECONDS,
  });
  return c.redirect(path, 303);
}

/**
 * The id and token this browser was sent to this page with, once (the cookie goes as it is read);
 * undefined when there are none, or they were for another page. Each page checks they are the
 * signed-in person's.
 */
export function takeNewSecret(c: AppContext): { id: string; token: string } | undefined {
  const value = getCookie(c, cookieName(c));
  if (value === undefined || c.req.header('HX-Request')) return undefined;
  const [id = '', token = '', ...rest] = value.split('.');
  const forPage = rest.join('.');
  if (safeDecode(forPage) !== c.req.path) return undefined;
  deleteCookie(c, cookieName(c), { path: '/', secure: c.var.config.isSecureOrigin });
  return { id, token };
}

/**
 * The address of the link this browser just made, once; undefined when there is none to show. A
 * share link's (`/s/`), or a guest upload link's (`/u/`).
 */
export async function takeNewLink(
  c: Context<SignedInEnv>,
  kind: 'share' | 'guest' = 'share',
): Promise<string | undefined> {
  const made = takeNewSecret(c);
  if (!made) return undefined;
  const { id, token } = made;
  const links = kind === 'share' ? c.var.services.shares : c.var.services.guestLinks;
  const isOwn = await links.isOwnNewLink(c.var.user, id, token);
  return isOwn ? `${c.var.config.appOrigin}/${kind === 'share' ? 's' : 'u'}/${token}` : undefined;
}
