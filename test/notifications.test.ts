import { createHmac, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { createServices } from '../src/services/index.js';
import { OUTBOX_LEASE_MS } from '../src/services/notifications.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp, testDialect } from './support/app.js';
import { makePng } from './support/images.js';
import { MailServer, startReceiver } from './support/receivers.js';
import { deleteForGood, upload } from './support/uploads.js';

const SECRET = 'a webhook secret of some length';

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
    expect(await t.count('changes')).toBe(0);

    const id = await upload(alice, await makePng(), 'sunset.png');
    expect(await t.count('changes')).toBe(1);
    expect(await t.count('outbox', 'sent_at IS NULL')).toBe(3); // two admins by email, one webhook
    await t.services.notifications.deliver();
    expect(await t.count('outbox', 'sent_at IS NULL')).toBe(0);

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
    await deleteForGood(alice, a);
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
    const waiting = await t.services.database.q
      .selectFrom('outbox')
      .select(['attempts', 'last_error', 'next_attempt_at'])
      .where('sent_at', 'is', null)
      .execute();
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

    // "Restart": a new set of services on the same database, with both ends back up.
    await mail.start(mail.port);
    hook.state.status = 200;
    const database = await connectDatabase(t.databaseTarget);
    let now = t.now() + 31_000;
    const restarted = createServices({
      database,
      storage: t.services.storage,
      clock: () => now,
      config: t.config,
    });
    await restarted.notifications.deliver();
    expect(hook.received).toHaveLength(2);
    expect(mail.mails).toHaveLength(2);
    expect(mail.mails[0]?.text).toContain('uploaded: “while-down”');
    now += 1000;
    expect((await restarted.notifications.status()).pending).toBe(0);
    await database.close();
  });

  it('keeps each email to its backoff while the mail server is down, however many wait (more than one digest holds)', async () => {
    await mail.stop();
    hook.state.status = 503;
    const member = await t.user('alice@example.com');
    for (let i = 0; i < 250; i++)
      await t.services.notifications.recordChange(member, 'upload', `image-${i}`, `“photo ${i}”`);
    // A minute of worker rounds, every 5 s, with the server still down.
    for (let round = 0; round < 12; round++) {
      await t.services.notifications.deliver();
      t.advance(5_000);
    }
    const attempts = await t.services.database.q
      .selectFrom('outbox')
      .select((eb) => [eb.fn.max('attempts').as('most'), eb.fn.min('attempts').as('least')])
      .where('channel', '=', 'email')
      .executeTakeFirstOrThrow();
    // Tried at once, then after the first backoff (30 s): twice at most in a minute, and none forgotten.
    expect(Number(attempts.most)).toBeLessThanOrEqual(2);
    expect(Number(attempts.least)).toBeGreaterThanOrEqual(1);
  });

  it('tells admins about an image put into the bucket from outside the app, found by reconcile', async () => {
    await upload(alice, await makePng(), 'sunset.png');
    await t.services.notifications.deliver();
    hook.received.length = 0;
    const aliceId = (await t.user('alice@example.com')).id;
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

describe('change notifications from two instances on one database', () => {
  let t: TestApp;
  let mail: MailServer;
  let hook: Awaited<ReturnType<typeof startReceiver>>;
  let alice: Client;
  const connections: AppDb[] = [];
  const ADMINS = ['admin@example.com', 'second-admin@example.com'];

  beforeEach(async () => {
    mail = new MailServer();
    await mail.start();
    hook = await startReceiver();
    t = await makeTestApp({
      env: {
        SMTP_URL: `smtp://127.0.0.1:${mail.port}`,
        NOTIFY_EMAIL_FROM: 'Gallery <gallery@example.com>',
        WEBHOOK_URL: hook.url,
        WEBHOOK_SECRET: SECRET,
      },
    });
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    await signUpWithRole(t, admin, 'second-admin@example.com', 'admin');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
  });
  afterEach(async () => {
    for (const database of connections.splice(0)) await database.close();
    await t.close();
    hook.dropHung();
    await mail.stop();
    await hook.close();
  });

  /**
   * Another instance on the test app's database: its own services and instance id, as a second
   * process has, and on PostgreSQL its own pool. On SQLite it shares the app's connection unless it
   * needs its own (to crash): two connections in one process deadlock when one waits for the write
   * lock (busy_timeout, synchronously) that the other holds across an await, which two processes
   * do not. Claims are rows either way, so sharing the connection tests them all the same.
   */
  async function anotherInstance(opts: { ownConnection?: boolean } = {}) {
    let database = t.services.database;
    if (testDialect === 'postgres' || opts.ownConnection) {
      database = await connectDatabase(t.databaseTarget);
      connections.push(database);
    }
    return createServices({ database, storage: t.services.storage, clock: t.now, config: t.config });
  }

  const changeIds = async () =>
    (await t.services.database.q.selectFrom('changes').select('id').orderBy('id').execute()).map((r) => r.id);
  const webhookChangeIds = () => hook.received.map((r) => JSON.parse(r.body).change.id as number);
  const mailsTo = (email: string) => mail.mails.filter((m) => m.to.includes(email));
  const mentions = (text: string, name: string) => text.split(`uploaded: “${name}”`).length - 1;

  it('sends every change once by webhook and once in each admin’s email while both workers deliver at once', async () => {
    const a = t.services.notifications;
    const b = (await anotherInstance()).notifications;
    const names: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) {
        const name = `round-${round}-${i}`;
        names.push(name);
        await upload(alice, await makePng(), `${name}.png`);
      }
      await Promise.all([a.deliver(), b.deliver()]);
      t.advance(61_000); // the next round's changes may be emailed at once
    }
    await Promise.all([a.deliver(), b.deliver()]);
    expect(await t.count('outbox', 'sent_at IS NULL')).toBe(0);

    expect(await changeIds()).toHaveLength(names.length);
    expect(webhookChangeIds().sort((x, y) => x - y)).toEqual(await changeIds());
    const deliveries = hook.received.map((r) => r.headers['x-s3-gallery-delivery']);
    expect(new Set(deliveries).size).toBe(names.length);
    for (const email of ADMINS) {
      const text = mailsTo(email)
        .map((m) => m.text)
        .join('\n');
      for (const name of names) expect(mentions(text, name), `${email}: ${name}`).toBe(1);
    }
  });

  it('sends a webhook a crashed instance claimed once its lease has lapsed, and not before', async () => {
    hook.state.hang = true;
    await upload(alice, await makePng(), 'crash.png');
    const crashing = await anotherInstance({ ownConnection: true });
    const stuck = crashing.notifications.deliver().catch((err: unknown) => err);
    await vi.waitFor(() => expect(hook.received).toHaveLength(1), { timeout: 5000 });
    // The crash: the instance never writes again, and its request is cut off.
    await crashing.database.close();
    hook.dropHung();
    hook.state.hang = false;
    expect(await stuck).toBeInstanceOf(Error);

    const survivor = t.services.notifications;
    t.advance(OUTBOX_LEASE_MS - 1);
    await survivor.deliver();
    expect(hook.received).toHaveLength(1);
    for (const email of ADMINS) expect(mentions(mailsTo(email)[0]?.text ?? '', 'crash')).toBe(1);

    t.advance(1); // the lease has lapsed
    await survivor.deliver();
    expect(hook.received).toHaveLength(2);
    const [first, second] = hook.received;
    expect(second?.headers['x-s3-gallery-delivery']).toBe(first?.headers['x-s3-gallery-delivery']);
    const [changeId] = await changeIds();
    expect(webhookChangeIds()).toEqual([changeId, changeId]);
    await survivor.deliver();
    expect(hook.received).toHaveLength(2);
    expect(await t.count('outbox', 'sent_at IS NULL')).toBe(0);
  });

  it('sends a digest a crashed instance claimed once its lease has lapsed, exactly once, and not before', async () => {
    mail.holdNext = 1;
    await upload(alice, await makePng(), 'crash.png');
    const crashing = await anotherInstance({ ownConnection: true });
    const stuck = crashing.notifications.deliver().catch((err: unknown) => err);
    await vi.waitFor(() => expect(mail.held).toHaveLength(1), { timeout: 5000 });
    const [claimedFor] = mail.held[0]?.to ?? [];
    const other = ADMINS.find((email) => email !== claimedFor) ?? '';
    expect(ADMINS).toContain(claimedFor);
    // The crash: the instance never writes again, and its message never completes.
    await crashing.database.close();
    mail.held[0]?.answer(new Error('connection lost'));
    expect(await stuck).toBeInstanceOf(Error);
    expect(hook.received).toHaveLength(1); // its webhook went before the crash

    const survivor = t.services.notifications;
    t.advance(OUTBOX_LEASE_MS - 1);
    await survivor.deliver();
    expect(mailsTo(claimedFor ?? '')).toHaveLength(0);
    expect(mailsTo(other)).toHaveLength(1);

    t.advance(1); // the lease has lapsed
    await survivor.deliver();
    t.advance(61_000);
    await survivor.deliver();
    for (const email of ADMINS) {
      expect(mailsTo(email)).toHaveLength(1);
      expect(mentions(mailsTo(email)[0]?.text ?? '', 'crash')).toBe(1);
    }
    expect(hook.received).toHaveLength(1);
    expect(await t.count('outbox', 'sent_at IS NULL')).toBe(0);
  });
});

describe('notification settings', () => {
  it('refuses a webhook without a secret, naming the variable', () => {
    expect(() => loadConfig({ WEBHOOK_URL: 'https://hooks.example.com/x' })).toThrow(/WEBHOOK_SECRET/);
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.com' })).toThrow(/SMTP_URL/);
  });
});
