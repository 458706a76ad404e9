import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';

/**
 * The real server on a free loopback port with a fresh DATA_DIR. APP_ORIGIN must name the port
 * the browser uses, so a first start learns a free port and the real one listens on it.
 */
export async function startAppServer(env: Record<string, string> = {}, log?: Logger) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-app-'));
  const probe = await startServer(loadConfig({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent' }));
  const port = new URL(probe.url).port;
  await probe.stop();
  const origin = `http://127.0.0.1:${port}`;
  const running = await startServer(
    loadConfig({ DATA_DIR: dataDir, PORT: port, APP_ORIGIN: origin, LOG_LEVEL: 'silent', ...env }),
    log,
  );
  return {
    origin,
    dataDir,
    async close() {
      await running.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
