import { getCookie, setCookie } from 'hono/cookie';
import type { AppContext } from '../env.js';
import { DEVICE_TOKEN_TTL_MS } from '../services/device-tokens.js';

/**
 * The device cookie of OWASP's login throttling: one for signing in, one per share link, each
 * scoped to the one path that reads it (`/login`, `/s/<token>`) so it travels nowhere else.
 */
export type DeviceCookieKind = 'login' | 'link';

function cookieName(c: AppContext, kind: DeviceCookieKind): string {
  const name = kind === 'login' ? 's3g_device' : 's3g_link_device';
  return c.var.config.isSecureOrigin ? `__Secure-${name}` : name;
}

export function readDeviceCookie(c: AppContext, kind: DeviceCookieKind): string | undefined {
  return getCookie(c, cookieName(c, kind));
}

export function setDeviceCookie(c: AppContext, kind: DeviceCookieKind, path: string, token: string) {
  setCookie(c, cookieName(c, kind), token, {
    httpOnly: true,
    sameSite: 'Strict',
    secure: c.var.config.isSecureOrigin,
    path,
    maxAge: Math.floor(DEVICE_TOKEN_TTL_MS / 1000),
  });
}
