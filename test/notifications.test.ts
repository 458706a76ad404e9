import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { createServices } from '../src/services/index.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { makePng } from './support/images.js';
import { upload } from './support/uploads.js';

const SECRET = 'a webhook secret of some length';

interface Mail {
  to: string[];
  text: string;
}

/** Undoes quoted-printable soft breaks and escapes, enough to read a UTF-8 text mail back. */
function decodeQuotedPrintable(raw: string): string {
  const text = raw.replace(/=\r\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A real SMTP server in-process; it can be stopped and started again on the same port. */
class MailServer {
  readonly mails: Mail[] = [];
  private server: SMTPServer | undefined;
  port = 0;
  isRunning = false;

  async start(port = 0): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, done) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.mails.push({
            to: session.envelope.rcptTo.map((r) => r.address),
            text: decodeQuotedPrintable(Buffer.concat(chunks).toString('latin1')),
          });
          done();
        });
      },
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
    this.isRunning = true;
  }

  stop(): Promise<void> {
    this.isRunning = false;
    return new Promise((resolve) => this.server?.close(() => resolve()));
  }
}

/** A real HTTP receiver for webhooks that answers with whatever status the test sets. */
async function startReceiver() {
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const state = { status: 200 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(state.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('change notifications', () => {
  let t: TestApp;
  let mail: MailServer;
  let hook: Awaited<ReturnType<typeof startReceiver>>;
  let admin: Client;
  let alice: Client;

  beforeAll(async () => {
    mail = new MailServer();
    await mail.start();
    hook = await startReceiver();
  });
  afterAll(async () => {
    await mail.stop();
    await hook.close();
  });

  // Each test gets its own app, clock and empty mailbox, so it tells the same story run alone (-t).
  beforeEach(async () => {
    if (!mail.isRunning) await mail.start(mail.port);
    mail.mails.length = 0;
    hook.received.length = 0;
    hook.state.status = 200;
    t = await makeTestApp({
      env: {
        SMTP_URL: `smtp://127.0.0.1:${mail.port}`,
        NOTIFY_EMAIL_FROM: 'Gallery <gallery@example.com>',
        WEBHOOK_URL: hook.url,
        WEBHOOK_SECRET: SECRET,
      },
    });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    await signUpWithRole(t, admin, 'second-admin@example.com', 'admin');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
  });
  afterEach(() => t.close());

  it("emails every admin and calls the signed webhook when a member uploads, but not for an admin's own upload", async () => {
    await upload(admin, await makePng(), 'admins-own.png');
    expect(t.count('changes')).toBe(0);

    const id = await upload(alice, await makePng(), 'sunset.png');
    expect(t.count('changes')).toBe(1);
    expect(t.count('outbox', 'sent_at IS NULL')).toBe(3); // two admins by email, one webhook
    await t.services.notifications.deliver();
    expect(t.count('outbox', 'sent_at IS NULL')).toBe(0);

    expect(hook.received).toHaveLength(1);
    const call = hook.received[0] as { headers: http.IncomingHttpHeaders; body: string };
    const expected = `sha256=${createHmac('sha256', SECRET).update(call.body).digest('hex')}`;
    expect(call.headers['x-s3-gallery-signature']).toBe(expected);
    const body = JSON.parse(call.body);
    expect(body.change).toMatchObject({
      action: 'upload',
      imageId: id,
      actor: { email: 'alice@example.com' },
    });
    expect(body.change.url).toBe(`${t.config.appOrigin}/images/${id}`);

    expect(mail.mails.map((m) => m.to).sort()).toEqual([['admin@example.com'], ['second-admin@example.com']]);
    expect(mail.mails[0]?.text).toContain('From: Gallery <gallery@example.com>');
    expect(mail.mails[0]?.text).toContain('alice@example.com uploaded: “sunset”');
  });

  it('batches a burst into one email per admin per minute, while webhooks go one by one', async () => {
    // An email a moment ago opens the minute in which later changes wait for the next one.
    await upload(alice, await makePng(), 'first.png');
    await t.services.notifications.deliver();
    expect(mail.mails).toHaveLength(2);
    mail.mails.length = 0;
    hook.received.length = 0;

    const a = await upload(alice, await makePng(), 'burst-a.png');
    await upload(alice, await makePng(), 'burst-b.png');
    expect((await alice.post(`/images/${a}/delete`)).status).toBe(303);
    await t.services.notifications.deliver();
    expect(hook.received.map((r) => JSON.parse(r.body).change.action)).toEqual([
      'upload',
      'upload',
      'delete',
    ]);
    expect(mail.mails).toHaveLength(0); // the last email went less than a minute ago

    t.advance(61_000);
    await t.services.notifications.deliver();
    expect(mail.mails).toHaveLength(2);
    const text = mail.mails[0]?.text ?? '';
    expect(text).toContain('3 image changes');
    expect(text).toContain('uploaded: “burst-a”');
    expect(text).toContain('uploaded: “burst-b”');
    expect(text).toContain('deleted: “burst-a”');
  });

  it('keeps deliveries when the mail server and the receiver are down, and sends them after a restart', async () => {
    await mail.stop();
    hook.state.status = 503;
    await upload(alice, await makePng(), 'while-down.png');
    await t.services.notifications.deliver();
    const waiting = t.services.db
      .prepare('SELECT attempts, last_error, next_attempt_at FROM outbox WHERE sent_at IS NULL')
      .all() as { attempts: number; last_error: string; next_attempt_at: number }[];
    expect(waiting).toHaveLength(3);
    for (const row of waiting) {
      expect(row.attempts).toBe(1);
      expect(row.last_error).toBeTruthy();
      expect(row.next_attempt_at).toBeGreaterThan(t.now());
    }
    expect(hook.received).toHaveLength(1);
    // Not yet due: nothing is tried again.
    await t.services.notifications.deliver();
    expect(hook.received).toHaveLength(1);

    // "Restart": a new set of services on the same database file, with both ends back up.
    await mail.start(mail.port);
    hook.state.status = 200;
    const db = openDatabase(path.join(t.dataDir, 'gallery.db'));
    let now = t.now() + 31_000;
    const restarted = createServices({ db, storage: t.services.storage, clock: () => now, config: t.config });
    await restarted.notifications.deliver();
    expect(hook.received).toHaveLength(2);
    expect(mail.mails).toHaveLength(2);
    expect(mail.mails[0]?.text).toContain('uploaded: “while-down”');
    now += 1000;
    expect(restarted.notifications.status().pending).toBe(0);
    db.close();
  });

  it('tells admins about an image put into the bucket from outside the app, found by reconcile', async () => {
    await upload(alice, await makePng(), 'sunset.png');
    await t.services.notifications.deliver();
    hook.received.length = 0;
    const aliceId = t.user('alice@example.com').id;
    const key = `users/${aliceId}/originals/${randomUUID()}`;
    await t.services.storage.put(key, await makePng(), 'image/png');
    const report = await t.services.reconcile.run({ apply: true });
    expect(report.imported).toEqual([key]);
    await t.services.notifications.deliver();
    expect(hook.received.map((r) => JSON.parse(r.body).change.action)).toEqual(['outside_upload']);
    const html = await (await admin.get('/admin/changes')).text();
    expect(html).toContain('found in the bucket');
    expect(html).toContain('alice@example.com uploaded: “sunset”');
    expect((await alice.get('/admin/changes')).status).toBe(403);
  });
});

describe('notification settings', () => {
  it('refuses a webhook without a secret, naming the variable', () => {
    expect(() => loadConfig({ WEBHOOK_URL: 'https://hooks.example.com/x' })).toThrow(/WEBHOOK_SECRET/);
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.com' })).toThrow(/SMTP_URL/);
  });
});
