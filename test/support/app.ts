import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { createServices } from '../../src/services/index.js';
import type { LoginLimits } from '../../src/services/login.js';

export const START_TIME = Date.UTC(2026, 0, 15, 12, 0, 0);

export interface TestAppOptions {
  env?: Record<string, string>;
  loginLimits?: LoginLimits;
}

/** A real app on a fresh SQLite file in a temp dir, with a clock the test moves by hand. */
export function makeTestApp(opts: TestAppOptions = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 's3g-test-'));
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', NODE_ENV: 'test', ...opts.env });
  const db = openDatabase(path.join(dataDir, 'gallery.db'));
  let now = START_TIME;
  const clock = () => now;
  const services = createServices({
    db,
    clock,
    config,
    ...(opts.loginLimits ? { loginLimits: opts.loginLimits } : {}),
  });
  const app = createApp({ config, services, log: pino({ level: 'silent' }) });
  return {
    app,
    config,
    services,
    dataDir,
    advance(ms: number) {
      now += ms;
    },
    client(origin = config.appOrigin) {
      return new Client((input, init) => app.request(input, init), config.appOrigin, origin);
    },
    close() {
      if (db.open) db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Fetch = (input: string, init: RequestInit) => Response | Promise<Response>;

/** A browser stand-in: keeps cookies and sends the Origin header a browser sends with form posts. */
export class Client {
  readonly cookies = new Map<string, string>();

  constructor(
    private readonly fetchFn: Fetch,
    private readonly base: string,
    private readonly origin: string,
  ) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(path, { method: 'GET', headers });
  }

  async post(path: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
    return this.send(path, {
      method: 'POST',
      body: new URLSearchParams(fields).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: this.origin, ...headers },
    });
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('Cookie', this.cookieHeader());
    const res = await this.fetchFn(new URL(path, this.base).toString(), {
      ...init,
      headers,
      redirect: 'manual',
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
}

export const PASSWORD = 'correct horse battery';

export async function signUp(client: Client, email: string, extra: Record<string, string> = {}) {
  const res = await client.post('/signup', { email, password: PASSWORD, ...extra });
  if (res.status !== 303) throw new Error(`sign-up of ${email} failed: ${res.status} ${await res.text()}`);
  return res;
}

/** Signs up the admin, then a user with the given role through an invite link. */
export async function signUpWithRole(
  t: ReturnType<typeof makeTestApp>,
  admin: Client,
  email: string,
  role: string,
) {
  const res = await admin.post('/admin/invites', { role });
  const link = (await res.text()).match(/\/signup\?invite=([a-z0-9]+)/)?.[1];
  if (!link) throw new Error('no invite link on the page');
  const client = t.client();
  await signUp(client, email, { invite: link });
  return client;
}
