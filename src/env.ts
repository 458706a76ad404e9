import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Services } from './services/index.js';
import type { Session } from './services/sessions.js';
import type { User } from './services/users.js';

/** What middleware puts on the Hono context, typed once for every route. */
export interface AppEnv {
  Bindings: Partial<HttpBindings>;
  Variables: {
    config: Config;
    services: Services;
    /** this request's id (hono/request-id), also on every line `log` writes and in X-Request-Id */
    requestId: string;
    /** the server's logger, as a child carrying `reqId` */
    log: Logger;
    user: User | null;
    session: Session | null;
  };
}

/**
 * The context of a route behind requireUser or requireCan (src/middleware/session.ts): the guard
 * makes `user` and `session` certain, so handlers read `c.var.user` as a User.
 */
export interface SignedInEnv {
  Bindings: AppEnv['Bindings'];
  Variables: Omit<AppEnv['Variables'], 'user' | 'session'> & { user: User; session: Session };
}

/** A request's context, before or behind the sign-in guard: what helpers shared by both take. */
export type AppContext = Context<AppEnv> | Context<SignedInEnv>;
