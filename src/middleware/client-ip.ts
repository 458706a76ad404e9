import type { AppContext } from '../env.js';

/** An IPv6 address with a zone is under 64 characters; a longer "address" is made up. */
const MAX_IP_CHARS = 64;

/**
 * The peer address, or with TRUST_PROXY the address our one reverse proxy appended last to
 * X-Forwarded-For (earlier entries are whatever the client claimed).
 */
export function clientIp(c: AppContext): string {
  if (c.var.config.trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')?.split(',').pop()?.trim();
    if (forwarded) return forwarded.slice(0, MAX_IP_CHARS);
  }
  return c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
}
