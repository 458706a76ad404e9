import { randomBytes, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { createServices } from '../src/services/index.js';
import { JOB_LEASE_MS } from '../src/services/job-lease.js';
import { POLICY_CLOCK_MARGIN_MS, POLICY_TTL_SECONDS, uploadKeyOf } from '../src/services/pending-uploads.js';
import { SWEEP_BATCH, type SweepReport } from '../src/services/upload-sweeper.js';
import { MAX_OPEN_UPLOADS } from '../src/services/uploads.js';
import type { Storage } from '../src/storage/storage.js';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, type TestApp } from './support/app.js';
import { hiddenForm } from './support/html.js';
import { makePng } from './support/images.js';
import {
  deleteForGood,
  expectBucketMatchesRows,
  type Policy,
  postToBucket,
  upload,
} from './support/uploads.js';

const TTL_MS = POLICY_TTL_SECONDS * 1000;
/** The sweep covers every user: each test looks only at its own member's keys. */
const mine = (id: string, keys: string[]) => keys.filter((k) => k.startsWith(`users/${id}/`)).sort();

describe('the upload sweeper', () => {
  let t: TestApp;
  let n = 0;

  beforeAll(async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open' } });
    await signUp(t.client(), 'admin@example.com');
  });
  afterAll(() => t.close());

  async function member() {
    const client = t.client();
    const email = `sweep${++n}@example.com`;
    await signUp(client, email);
    return { client, id: (await t.user(email)).id };
  }

  async function presign(client: Client, name = 'left-behind.png'): Promise<Policy> {
    const res = await client.postJson('/uploads/presign', { name });
    expect(res.status).toBe(200);
    return (await res.json()) as Policy;
  }

  it('completes, drops or removes expired uploads, and leaves alone those still inside the clock margin', async () => {
    const { client, id } = await member();
    const arrived = await presign(client, 'came-back-never.png');
    expect((await postToBucket(arrived, await makePng(), 'image/png', 'x.png')).status).toBe(201);
    const empty = await presign(client);
    const junk = await presign(client);
    expect((await postToBucket(junk, randomBytes(5000), 'image/png', 'x.png')).status).toBe(201);

    // Expired by our clock, but the bucket's may be behind: nothing is touched yet.
    t.advance(TTL_MS + 1000);
    const early = await t.services.uploadSweeper.sweep({ apply: true });
    const touched = [...early.completed, ...early.rejected, ...early.expired, ...early.replaysDeleted];
    expect(mine(id, touched)).toEqual([]);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(3);

    t.advance(POLICY_CLOCK_MARGIN_MS);
    // A dry run cannot tell an image from junk before trying: it would try both.
    const dry = await t.services.uploadSweeper.sweep({ apply: false });
    expect(mine(id, dry.completed)).toEqual([arrived.key, junk.key].sort());
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(3);

    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(mine(id, report.completed)).toEqual([arrived.key]);
    expect(mine(id, report.expired)).toEqual([empty.key]);
    expect(mine(id, report.rejected)).toEqual([junk.key]);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(0);
    const titles = await t.services.database.q
      .selectFrom('images')
      .select('title')
      .where('owner_id', '=', id)
      .execute();
    expect(titles.map((r) => r.title)).toEqual(['came-back-never']);
    await expectBucketMatchesRows(t.services, id);
  });

  it('completes a plain form whose browser never came back with the newest file under its prefix, by its name', async () => {
    const { client, id } = await member();
    const html = await (await client.get('/upload')).text();
    const { action, fields } = hiddenForm(html, '#upload-form');
    const post = async (name: string, bytes: Buffer) => {
      const form = new FormData();
      for (const [k, v] of fields) if (k !== 'Content-Type') form.append(k, v);
      form.append('Content-Type', 'image/png');
      form.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), name);
      const res = await fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
      expect(res.status).toBe(303); // the redirect back to the app is never followed
      return new URL(res.headers.get('location') as string).searchParams.get('key') as string;
    };
    // As S3 allows (the embedded store keeps one file per form), two files under its prefix.
    const older = await post('A first try.png', await makePng(100, 80));
    // The bucket's times are whole seconds (as S3's): the newer file is a second newer.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const newer = await post('Beach, day two.png', await makePng(80, 100));
    // The policy lets its holder write deeper under the prefix too (a key field of their own): newest, never a file of the upload.
    const deeper = `${uploadKeyOf(newer)}sub/newest.png`;
    await t.services.storage.put(deeper, await makePng(90, 90), 'image/png');
    expect(uploadKeyOf(older)).toBe(uploadKeyOf(newer));

    t.advance(TTL_MS + POLICY_CLOCK_MARGIN_MS + 1000);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(mine(id, report.completed)).toEqual([uploadKeyOf(newer)]);
    expect(mine(id, report.replaysDeleted)).toEqual([older, deeper].sort());
    const rows = await t.services.database.q
      .selectFrom('images')
      .select(['title', 'original_name'])
      .where('owner_id', '=', id)
      .execute();
    expect(rows).toEqual([{ title: 'Beach, day two', original_name: 'Beach, day two.png' }]);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(0);
    await t.settle();
    await expectBucketMatchesRows(t.services, id);
  });

  it('starts over a completion that died with its process, discarding the copy it had made', async () => {
    const { client, id } = await member();
    const policy = await presign(client);
    expect((await postToBucket(policy, await makePng(), 'image/png', 'x.png')).status).toBe(201);
    // What a completion leaves when killed after its copy: a claimed row and an unreferenced copy.
    const stale = `users/${id}/originals/${randomUUID()}`;
    const claimed = await t.services.database.q
      .updateTable('pending_uploads')
      .set({ final_key: stale, claimed_at: t.now() })
      .where('key', '=', policy.key)
      .executeTakeFirst();
    expect(Number(claimed.numUpdatedRows)).toBe(1);
    await t.services.storage.copy(policy.key, stale);
    // While the row names it, reconcile takes the copy for neither an outside upload nor an orphan.
    const dry = await t.services.reconcile.run({ apply: false });
    expect([...dry.imported, ...dry.orphansDeleted]).not.toContain(stale);

    t.advance(TTL_MS + POLICY_CLOCK_MARGIN_MS + 1000);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(mine(id, report.completed)).toEqual([policy.key]);
    expect(await t.services.storage.head(stale)).toBeNull();
    const originals = (
      await t.services.database.q
        .selectFrom('images')
        .select('original_key')
        .where('owner_id', '=', id)
        .execute()
    ).map((r) => r.original_key);
    expect(originals).toHaveLength(1);
    expect(originals).not.toContain(stale);
    await expectBucketMatchesRows(t.services, id);
  });

  it('closes the replacement uploads of a deleted image, so what their policies write is still swept', async () => {
    const { client, id } = await member();
    const imageId = await upload(client, await makePng(), 'victim.png');
    await t.settle(); // its renditions are made before it is deleted: what is left is the replacement's
    const res = await client.postJson('/uploads/presign', { name: 'new.png', replaces: imageId });
    const replacement = (await res.json()) as Policy;
    expect((await postToBucket(replacement, await makePng(50, 50), 'image/png', 'x.png')).status).toBe(201);
    await deleteForGood(client, imageId);
    expect(await t.services.storage.head(replacement.key)).toBeNull();
    expect(await t.count('pending_uploads', `key = '${replacement.key}' AND closed_at IS NOT NULL`)).toBe(1);

    // The policy is still valid: a post lands, completing it finds the image gone...
    expect((await postToBucket(replacement, await makePng(50, 50), 'image/png', 'x.png')).status).toBe(201);
    const done = await client.postJson('/uploads/complete', { key: replacement.key });
    expect(done.status).toBe(404);
    expect(((await done.json()) as { error: string }).error).toContain('deleted');
    // ...and the sweep removes the object once the policy has expired.
    t.advance(TTL_MS + POLICY_CLOCK_MARGIN_MS + 1000);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.replaysDeleted).toContain(replacement.key);
    expect((await t.services.storage.list(`users/${id}/`)).keys).toEqual([]);
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(0);
  });

  it('settles every due row in one run, however many a member piled up since the last', async () => {
    // Abandoned uploads, MAX_OPEN_UPLOADS per policy lifetime, over a few hours: more than one batch.
    const { client, id } = await member();
    const keys: string[] = [];
    while (keys.length <= SWEEP_BATCH) {
      for (let i = 0; i < MAX_OPEN_UPLOADS; i++) keys.push((await presign(client)).key);
      t.advance(TTL_MS + 1000);
    }
    t.advance(POLICY_CLOCK_MARGIN_MS);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(mine(id, report.expired)).toEqual(keys.sort());
    expect(await t.count('pending_uploads', `owner_id = '${id}'`)).toBe(0);
  });

  it('runs on its own timer until stopped', async () => {
    const { client, id } = await member();
    const policy = await presign(client);
    expect((await postToBucket(policy, await makePng(), 'image/png', 'x.png')).status).toBe(201);
    t.advance(TTL_MS + POLICY_CLOCK_MARGIN_MS + 1000);
    const stop = t.services.uploadSweeper.start(pino({ level: 'silent' }), 20);
    try {
      await expect
        .poll(() => t.count('pending_uploads', `owner_id = '${id}'`), { timeout: 15_000, interval: 50 })
        .toBe(0);
    } finally {
      await stop();
    }
    expect(await t.count('images', `owner_id = '${id}'`)).toBe(1);
  });
});

describe('the upload sweep on two instances on one database', () => {
  let t: TestApp;
  let client: Client;
  let id: string;
  const silent = pino({ level: 'silent' });
  const connections: AppDb[] = [];

  beforeEach(async () => {
    t = await makeTestApp();
    client = t.client();
    await signUp(client, 'admin@example.com');
    id = (await t.user('admin@example.com')).id;
  });
  afterEach(async () => {
    for (const database of connections.splice(0)) await database.close();
    await t.close();
  });

  /** Another instance on the test app's database: its own connection and services, as a second process has. */
  async function anotherInstance(storage: Storage = t.services.storage) {
    const database = await connectDatabase(t.databaseTarget);
    connections.push(database);
    return createServices({ database, storage, clock: t.now, config: t.config });
  }

  /** Uploads left behind: `arrived` whose file is in the bucket, `empty` whose file never came; all expired. */
  async function leftBehind(arrived: number, empty: number) {
    const keys = { arrived: [] as string[], empty: [] as string[] };
    for (let i = 0; i < arrived + empty; i++) {
      const res = await client.postJson('/uploads/presign', { name: `left-${i}.png` });
      const policy = (await res.json()) as Policy;
      if (i < arrived) {
        expect((await postToBucket(policy, await makePng(), 'image/png', 'x.png')).status).toBe(201);
        keys.arrived.push(policy.key);
      } else keys.empty.push(policy.key);
    }
    t.advance(TTL_MS + POLICY_CLOCK_MARGIN_MS + 1000);
    return keys;
  }

  const settled = (r: SweepReport) => [...r.completed, ...r.expired].sort();

  it('sweeps on one instance when both sweep at once, and again on the next round', async () => {
    const a = t.services.uploadSweeper;
    const b = (await anotherInstance()).uploadSweeper;
    for (let round = 0; round < 3; round++) {
      const keys = await leftBehind(2, 2);
      const reports = await Promise.all([a.sweepScheduled(silent), b.sweepScheduled(silent)]);
      const ran = reports.filter((r) => r !== null);
      expect(ran, `round ${round}`).toHaveLength(1);
      expect(ran[0]?.completed.sort()).toEqual(keys.arrived.sort());
      expect(ran[0]?.expired.sort()).toEqual(keys.empty.sort());
      expect(await t.count('pending_uploads')).toBe(0);
      expect(await t.count('images')).toBe(2 * (round + 1));
    }
    await expectBucketMatchesRows(t.services, id);
  });

  it('waits out a crashed instance’s lease on the sweep, then sweeps what it left', async () => {
    const keys = await leftBehind(1, 1);
    // The crashing instance's bucket never answers: its sweep holds the lease, then the process dies.
    let asked = 0;
    const hung: Storage = {
      ...t.services.storage,
      head: () => {
        asked++;
        return new Promise(() => {});
      },
    };
    const crashing = await anotherInstance(hung);
    void crashing.uploadSweeper.sweepScheduled(silent);
    await vi.waitFor(() => expect(asked).toBe(1));
    await crashing.database.close();

    const survivor = t.services.uploadSweeper;
    t.advance(JOB_LEASE_MS - 1);
    expect(await survivor.sweepScheduled(silent)).toBeNull();
    expect(await t.count('pending_uploads')).toBe(2);
    t.advance(1); // the lease has lapsed
    const report = await survivor.sweepScheduled(silent);
    expect(report && settled(report)).toEqual([...keys.arrived, ...keys.empty].sort());
    expect(await t.count('pending_uploads')).toBe(0);
    expect(await t.count('images')).toBe(1);
  });

  it('refuses reconcile --apply while another instance sweeps, and sweeps nothing twice', async () => {
    const keys = await leftBehind(1, 1);
    let letGo = () => {};
    const gate = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    const held: Storage = {
      ...t.services.storage,
      head: async (key) => {
        await gate;
        return t.services.storage.head(key);
      },
    };
    const sweeping = (await anotherInstance(held)).uploadSweeper.sweepScheduled(silent);
    await vi.waitFor(async () => expect(await t.count('job_leases', "name = 'upload-sweep'")).toBe(1));
    await expect(t.services.reconcile.run({ apply: true })).rejects.toThrow(
      /upload sweep \(or another reconcile\) is running now, so nothing was changed/,
    );
    expect((await t.services.reconcile.run({ apply: false })).completed).toEqual(keys.arrived);
    letGo();
    const report = await sweeping;
    expect(report && settled(report)).toEqual([...keys.arrived, ...keys.empty].sort());
    const after = await t.services.reconcile.run({ apply: true });
    expect(settled(after)).toEqual([]);
    expect(await t.count('images')).toBe(1);
  });
});
