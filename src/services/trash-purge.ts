import type { Logger } from 'pino';
import type { Images } from './images.js';
import { JOB_LEASE_MS, type JobLeases } from './job-lease.js';

/** How often the server looks for images whose time in the trash is up. */
const TRASH_PURGE_INTERVAL_MS = 60 * 60 * 1000;
/** The purge's lease: one instance purges at a time (see src/services/job-lease.ts). */
const TRASH_PURGE_JOB = 'trash-purge';

/**
 * Deletes for good what has been in the trash for `days` days: at start-up, then hourly, on one
 * instance at a time. A purge cut short (stopping, a lost lease) leaves the rest for the next turn.
 */
export function createTrashPurge(deps: { images: Images; leases: JobLeases }) {
  const { images, leases } = deps;

  /** One purge unless another instance is purging now; how many images went (null: skipped). */
  async function purgeScheduled(days: number, log: Logger, isStopping: () => boolean = () => false) {
    const outcome = await leases.tryRun(TRASH_PURGE_JOB, JOB_LEASE_MS, (lease) =>
      images.purgeTrash(days, () => isStopping() || lease.isLost()),
    );
    if (!outcome.ran) return null;
    if (outcome.result > 0) log.info({ deleted: outcome.result, days }, 'trash purged');
    return outcome.result;
  }

  return {
    purgeScheduled,

    /** Purges now and every `intervalMs` until stopped, one run at a time; errors are logged, never thrown. */
    start(log: Logger, days: number, intervalMs = TRASH_PURGE_INTERVAL_MS): () => Promise<void> {
      let isStopping = false;
      let running: Promise<void> | null = null;
      const tick = () => {
        running ??= purgeScheduled(days, log, () => isStopping)
          .then(() => {})
          .catch((err) => log.error({ err }, 'trash purge failed'))
          .finally(() => {
            running = null;
          });
      };
      const first = setTimeout(tick, 0);
      const timer = setInterval(tick, intervalMs);
      first.unref();
      timer.unref();
      return async () => {
        isStopping = true;
        clearTimeout(first);
        clearInterval(timer);
        await running;
      };
    },
  };
}
