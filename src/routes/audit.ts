import type { Context } from 'hono';
import type { AppEnv } from '../env.js';
import { clientIp } from '../middleware/client-ip.js';
import type { AuditAction, ThrottledKind } from '../services/audit.js';

/** Records who did what from this request; the actor defaults to the signed-in user. */
export function audit(
  c: Context<AppEnv>,
  action: AuditAction,
  opts: { target?: string | null; detail?: string | null; actor?: { id: string; email: string } | null } = {},
): void {
  const actor = opts.actor === undefined ? c.var.user : opts.actor;
  c.var.services.audit.record({
    action,
    actor: actor ? { id: actor.id, email: actor.email } : null,
    target: opts.target ?? null,
    detail: opts.detail ?? null,
    ip: clientIp(c),
  });
}

/** A request a throttle refused: counted, and written once per window and address, not per request. */
export function auditThrottled(c: Context<AppEnv>, kind: ThrottledKind, target: string | null = null): void {
  c.var.services.audit.recordThrottled({ kind, ip: clientIp(c), target });
}

/** A share link opened: counted, and written once per window, link and address, not per request. */
export function auditShareOpen(c: Context<AppEnv>, linkId: string): void {
  c.var.services.audit.recordShareOpen({ linkId, ip: clientIp(c) });
}
