import { realpathSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getRequestListener } from '@hono/node-server';
import { createApp } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db/connection.js';
import { createLogger } from './logger.js';
import { systemClock } from './services/clock.js';
import { createServices } from './services/index.js';

export interface RunningServer {
  url: string;
  server: http.Server;
  stop(): Promise<void>;
}

/** Opens everything, listens, and returns a handle that stops it cleanly. */
export async function startServer(config: Config): Promise<RunningServer> {
  const log = createLogger(config.logLevel);
  const db = openDatabase(path.join(config.dataDir, 'gallery.db'));
  const services = createServices({ db, clock: systemClock, config });
  services.sessions.purgeExpired();
  const app = createApp({ config, services, log });
  const listener = getRequestListener(app.fetch);
  const server = http.createServer(listener);
  server.headersTimeout = 30_000;
  server.requestTimeout = 5 * 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  log.info({ msg: 'listening', url, appOrigin: config.appOrigin, dataDir: config.dataDir });

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= new Promise<void>((resolve) => {
      // close() stops accepting and waits for in-flight requests; idle keep-alive sockets are let go.
      server.close(() => {
        db.close();
        resolve();
      });
      server.closeIdleConnections();
    });
    return stopping;
  };
  return { url, server, stop };
}

async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const running = await startServer(config);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      running.stop().then(() => process.exit(0));
      // In-flight requests get a bounded grace period, then the process goes regardless.
      setTimeout(() => process.exit(1), 10_000).unref();
    });
  }
}

const isEntryPoint = process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
