import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, PASSWORD, signUp, type TestApp, testDialect } from './support/app.js';
import { makePng } from './support/images.js';
import { type Policy, postToBucket, upload } from './support/uploads.js';

/** Everything a failed action must leave alone, read straight from the database. */
async function snapshot(t: TestApp) {
  const { q } = t.services.database;
  return {
    images: await q
      .selectFrom('images')
      .select(['id', 'title', 'original_key', 'updated_at'])
      .orderBy('id')
      .execute(),
    pending: await q.selectFrom('pending_uploads').select('key').orderBy('key').execute(),
    changes: await t.count('changes'),
  };
}

describe('when storage is down', () => {
  let t: TestApp;
  let alice: Client;
  let imageId: string;

  beforeAll(async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open' } });
    alice = t.client();
    await signUp(alice, 'admin@example.com');
    imageId = await upload(alice, await makePng(), 'kept.png');
    await t.settle();
  });
  afterAll(() => t.close());

  it('reports degraded on /healthz, keeps login and pages from SQLite working, and changes nothing', async () => {
    // An upload that reached the bucket but was not completed yet.
    const presign = await alice.postJson('/uploads/presign', { name: 'late.png' });
    const policy = (await presign.json()) as Policy;
    expect((await postToBucket(policy, await makePng(), 'image/png', 'late.png')).status).toBe(201);
    const before = await snapshot(t);

    await t.store.pause();
    t.advance(60_000); // past the health check's cache
    const health = await t.client().get('/healthz');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      status: 'degraded',
      database: 'ok',
      databaseKind: testDialect,
      storage: 'unreachable',
      processing: { waiting: 0, running: 0, failed: 0, oldestSeconds: 0 },
    });

    const bob = t.client();
    expect((await bob.post('/login', { email: 'admin@example.com', password: PASSWORD })).status).toBe(303);
    expect((await bob.get('/')).status).toBe(200);
    expect((await bob.get(`/images/${imageId}`)).status).toBe(200);

    const started = Date.now();
    const complete = await alice.postJson('/uploads/complete', { key: policy.key });
    expect(complete.status).toBe(503);
    expect(((await complete.json()) as { error: string }).error).toContain('Image storage is not reachable');
    expect(Date.now() - started).toBeLessThan(15_000);
    const page = await alice.get(`/uploads/complete?key=${encodeURIComponent(policy.key)}`);
    expect(page.status).toBe(503);
    const html = await page.text();
    expect(html).toContain('Nothing was changed');
    expect(html).not.toMatch(/at .*\.(ts|js):\d+/); // no stack trace
    expect(await snapshot(t)).toEqual(before);

    await t.store.resume();
    t.advance(60_000);
    expect(await (await t.client().get('/healthz')).json()).toMatchObject({ status: 'ok' });
    expect((await alice.postJson('/uploads/complete', { key: policy.key })).status).toBe(200);
  });
});

describe.skipIf(testDialect !== 'postgres')('when PostgreSQL keeps aborting a change for conflicts', () => {
  let t: TestApp;
  let alice: Client;
  let imageId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    alice = t.client();
    await signUp(alice, 'admin@example.com');
    imageId = await upload(alice, await makePng(), 'kept.png');
    // Every rename aborts as a serialization failure would, however often it is run again.
    await sql
      .raw(
        `CREATE FUNCTION always_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$;
         CREATE TRIGGER always_conflict BEFORE UPDATE OF title ON images
           FOR EACH ROW EXECUTE FUNCTION always_conflict();`,
      )
      .execute(t.services.database.q);
  });
  afterAll(() => t.close());

  it('answers 503 with Retry-After once its retries are spent, and changes nothing', async () => {
    const before = await snapshot(t);
    const res = await alice.post(`/images/${imageId}/rename`, { title: 'Never saved' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.text()).toContain('The server is busy right now. Nothing was changed');
    expect(await snapshot(t)).toEqual(before);
  });
});
