import { realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { getRequestListener } from '@hono/node-server';
import { requestTimeoutAnswer, type S3Server, type StoreChange } from '@s3-gallery/s3-store';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { connectDatabase, databaseTarget } from './db/database.js';
import { createLogger, requestIdOf } from './logger.js';
import { appRequestTimeout, withDeadlines } from './middleware/request-deadlines.js';
import type { AccessKeys } from './services/access-keys.js';
import { systemClock } from './services/clock.js';
import { createServices, type ServiceDeps } from './services/index.js';
import {
  accessKeyFile,
  createEmbeddedStore,
  EMBEDDED_MOUNT,
  embeddedCredentials,
  embeddedStorageOptions,
  isEmbeddedRequest,
  objectsDir,
  urlHost,
} from './storage/embedded.js';
import { createStorage, type StorageOptions } from './storage/s3.js';
import { uploadRefusalHtml } from './views/upload-refusal.js';

export interface RunningServer {
  url: string;
  server: http.Server;
  stop(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Opens everything, listens, and returns a handle that stops it cleanly. */
export async function startServer(
  config: Config,
  log: Logger = createLogger(config.logLevel),
): Promise<RunningServer> {
  let handle: Handler = (_req, res) => {
    res.writeHead(503, { 'Retry-After': '1' }).end('starting');
  };
  let store: S3Server | undefined;
  const limits = config.http;
  const appBudget = { totalMs: limits.requestTimeoutMs, answer: appRequestTimeout };
  const storeBudget = { totalMs: limits.uploadTimeoutMs, answer: requestTimeoutAnswer };
  const server = http.createServer(
    {
      headersTimeout: limits.requestTimeoutMs,
      // Replaced by the per-route budgets below: uploads to the store need more time than forms.
      requestTimeout: 0,
      // How often Node looks for expired headers (default 30 s, which would double a short timeout).
      connectionsCheckingInterval: 1000,
    },
    withDeadlines((req, res) => handle(req, res), {
      idleMs: limits.idleTimeoutMs,
      budgetFor: (req) => (store && isEmbeddedRequest(req.url) ? storeBudget : appBudget),
      // The path only: a query string can carry tokens.
      onCut: (req, reason) =>
        log.info({
          msg: 'request timed out',
          reqId: requestIdOf(req, config.trustProxy),
          reason,
          method: req.method,
          path: req.url?.split('?')[0],
        }),
    }),
  );
  server.timeout = limits.idleTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // Past the cap Node closes each new connection at once; operators hear of it at most once a minute.
  let lastDropWarning = 0;
  server.on('drop', () => {
    if (Date.now() - lastDropWarning < 60_000) return;
    lastDropWarning = Date.now();
    log.warn({ maxConnections: limits.maxConnections }, 'connection cap reached: refusing new connections');
  });
  // The embedded store's endpoint names our port, so listen first and build the app afterwards.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${urlHost(config.host)}:${port}`;

  const database = await connectDatabase(databaseTarget(config), (err) =>
    log.warn({ err }, 'lost an idle database connection; the next query opens another'),
  );
  let storageOpts: StorageOptions | undefined = config.s3;
  let noticeChange: ((change: StoreChange) => void) | undefined;
  // People's own keys are the services' (below): the store asks them on each request.
  let accessKeys: AccessKeys | undefined;
  let embeddedStore: ServiceDeps['embeddedStore'];
  if (!storageOpts) {
    const creds = await embeddedCredentials(config);
    store = createEmbeddedStore(config, creds, log, {
      formRefusalPage: (refusal) => uploadRefusalHtml(refusal, config),
      // Changes made with the AWS CLI and other tools are picked up as they happen (services below).
      onChange: (change) => noticeChange?.(change),
      keys: async (id) => accessKeys?.grantFor(id),
      onAccess: (entry) =>
        void accessKeys
          ?.recordRequest(entry)
          .catch((err: unknown) => log.error({ err }, 'a request made with a personal key was not audited')),
    });
    embeddedStore = {
      endpoint: `${config.appOrigin}${EMBEDDED_MOUNT}`,
      bucket: creds.bucket,
      region: creds.region,
      keyFile: accessKeyFile(config),
    };
    storageOpts = embeddedStorageOptions(config, creds, port);
    // Leftover temp files of a crashed upload are swept before we say we are up; the key index
    // builds in the background (only listings wait for it).
    await store.ready;
  }
  const storage = createStorage(storageOpts, systemClock);
  const services = createServices({
    database,
    storage,
    clock: systemClock,
    config,
    // The embedded store is this process: if we answer, it does. What can fail is its disk, and a
    // listing would wait for the start-up index, so the probe asks the disk instead.
    ...(store ? { probeStorage: () => fs.access(objectsDir(config), fs.constants.W_OK) } : {}),
    ...(embeddedStore ? { embeddedStore } : {}),
  });
  accessKeys = services.accessKeys;
  await services.sessions.purgeExpired();
  const stopNotifier = services.notifications.startWorker(log);
  const stopSweeper = services.uploadSweeper.start(log);
  const stopTrashPurge = services.trashPurge.start(log, config.trashDays);
  const stopAuditSchedule = services.audit.startSchedule(log, { retentionDays: config.auditRetentionDays });
  const stopWorkers = services.jobs.start(log);
  const stopPickup = services.outsideChanges.start(log);
  const stopReconcile = config.reconcileIntervalMs
    ? services.reconcile.startSchedule(log, config.reconcileIntervalMs)
    : async () => {};
  if (store) noticeChange = services.outsideChanges.notice;
  const appListener = getRequestListener(createApp({ config, services, log }).fetch);
  handle = (req, res) => {
    if (store && isEmbeddedRequest(req.url)) store.handle(req, res);
    else void appListener(req, res);
  };
  log.info({
    msg: 'listening',
    url,
    appOrigin: config.appOrigin,
    dataDir: config.dataDir,
    storage: config.s3 ? config.s3.endpoint : `embedded at ${config.appOrigin}${EMBEDDED_MOUNT}`,
  });

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= new Promise<void>((resolve) => {
      // No new sweep starts; one running stops after the row in hand (each step is safe to cut short).
      const sweeperStopped = stopSweeper();
      // close() stops accepting and waits for in-flight requests; idle keep-alive sockets are let go.
      server.close(() => {
        // A delivery cut short stays in the outbox and goes out after the next start.
        // A renditions job cut short is claimed again once its lease lapses (here, or on another instance).
        void Promise.allSettled([
          stopNotifier(),
          sweeperStopped,
          stopTrashPurge(),
          stopAuditSchedule(),
          stopWorkers(),
          stopPickup(),
          stopReconcile(),
          // Every connection has closed by now, so no store request can still be answered: a
          // handler that has not settled (seen, rarely, after a browser went away mid-request; not
          // yet explained) is not waited for past STORE_CLOSE_GRACE_MS.
          store ? closeWithin(store.close(), STORE_CLOSE_GRACE_MS, log) : undefined,
        ])
          .then(() => database.close())
          .finally(resolve);
      });
      server.closeIdleConnections();
    });
    return stopping;
  };
  return { url, server, stop };
}

/** How long a stopping server waits for the embedded store's last handlers once no connection is left. */
const STORE_CLOSE_GRACE_MS = 5_000;

function closeWithin(closing: Promise<void>, ms: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      log.warn(
        { ms },
        'the embedded store still had requests running after its connections closed; stopping anyway',
      );
      resolve();
    }, ms);
    timer.unref();
  });
  return Promise.race([closing, late]).finally(() => clearTimeout(timer));
}

async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    // A bad setting is the operator's to fix: its message alone, on the terminal.
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const running = await startServer(config, log).catch((err: unknown) => {
    log.fatal({ err }, 'could not start');
    process.exit(1);
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void running.stop().then(() => process.exit(0));
      // In-flight requests get a bounded grace period, then the process goes regardless.
      setTimeout(() => process.exit(1), 10_000).unref();
    });
  }
}

const isEntryPoint = process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint) {
  main().catch((err) => {
    // Only a failure to read the settings gets here, before they say how to log.
    createLogger('info').fatal({ err }, 'could not start');
    process.exit(1);
  });
}
