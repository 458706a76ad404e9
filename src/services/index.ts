import type { Config } from '../config.js';
import type { Db } from '../db/connection.js';
import type { Clock } from './clock.js';
import { createInvites } from './invites.js';
import { createLogin, type LoginLimits } from './login.js';
import { createSessions } from './sessions.js';
import { createUsers } from './users.js';

export interface ServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'signup'>;
  loginLimits?: LoginLimits;
}

export function createServices({ db, clock, config, loginLimits }: ServiceDeps) {
  const users = createUsers(db, clock, config.signup);
  const sessions = createSessions(db, clock);
  return {
    db,
    clock,
    users,
    sessions,
    invites: createInvites(db, clock),
    login: createLogin(users, sessions, clock, loginLimits ?? { perAccount: 5, perIp: 50 }),
    /** For /healthz: a real query, so a broken or locked database shows. */
    checkDatabase(): boolean {
      return (db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
    },
  };
}

export type Services = ReturnType<typeof createServices>;
