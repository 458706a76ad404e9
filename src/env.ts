import type { HttpBindings } from '@hono/node-server';
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
