// Changes are audited by the services, in the change's transaction; what is left here is counted,
// not a change: refusals by a throttle, share links opened and downloads through them.
import type { AppContext } from '../env.js';
import { clientIp } from '../middleware/client-ip.js';
import type { ThrottledKind } from '../services/audit.js';

/** A request a throttle refused: counted, and written once per window and address, not per request. */
export function auditThrottled(
  c: AppContext,
  kind: ThrottledKind,
  target: string | null = null,
): Promise<void> {
  return c.var.services.audit.recordThrottled({ kind, ip: clientIp(c), target });
}

/** A share link opened: counted, and written once per window, link and address, not per request. */
export function auditShareOpen(c: AppContext, linkId: string): Promise<void> {
  return c.var.services.audit.recordShareOpen({ linkId, ip: clientIp(c) });
}

/** A new visit of a guest upload link: counted like share links' openings. */
export function auditGuestOpen(c: AppContext, linkId: string): Promise<void> {
  return c.var.services.audit.recordGuestOpen({ linkId, ip: clientIp(c) });
}

/** A download through a share link: counted like openings. */
export function auditShareDownload(c: AppContext, linkId: string): Promise<void> {
  return c.var.services.audit.recordShareDownload({ linkId, ip: clientIp(c) });
}
