import type { AppDb } from '../database.js';

/** The job_leases table: which instance runs each scheduled job now (see services/job-lease.ts). */
export function jobLeasesRepository(database: AppDb) {
  return {
    /**
     * Takes the lease for `holder` until now + leaseMs, in one statement: an upsert that overwrites
     * only a lapsed lease or the holder's own. False when another holder has it.
     */
    async take(name: string, holder: string, now: number, leaseMs: number): Promise<boolean> {
      const taken = await database.q
        .insertInto('job_leases')
        .values({ name, held_by: holder, held_until: now + leaseMs })
        .onConflict((oc) =>
          oc
            .column('name')
            .doUpdateSet((eb) => ({
              held_by: eb.ref('excluded.held_by'),
              held_until: eb.ref('excluded.held_until'),
            }))
            .where((eb) =>
              eb.or([eb('job_leases.held_until', '<=', now), eb('job_leases.held_by', '=', holder)]),
            ),
        )
        .returning('name')
        .executeTakeFirst();
      return taken !== undefined;
    },

    /** Ends the lease at `now` if `holder` still has it. */
    async release(name: string, holder: string, now: number): Promise<void> {
      await database.q
        .updateTable('job_leases')
        .set({ held_until: now })
        .where('name', '=', name)
        .where('held_by', '=', holder)
        .execute();
    },
  };
}
