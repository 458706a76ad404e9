import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, PASSWORD, signUp, type TestApp } from './support/app.js';
import { makePng } from './support/images.js';
import { expectBucketMatchesRows, type Policy, postToBucket, upload } from './support/uploads.js';

describe('races', () => {
  let t: TestApp;
  let first: Client;
  let second: Client;
  let ownerId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    first = t.client();
    await signUp(first, 'owner@example.com');
    second = t.client(); // the same person in another browser
    expect((await second.post('/login', { email: 'owner@example.com', password: PASSWORD })).status).toBe(
      303,
    );
    ownerId = (await t.user('owner@example.com')).id;
  });
  afterAll(() => t.close());

  /** The bucket holds exactly what the rows name: nothing orphaned, nothing missing, nothing queued. */
  async function expectConsistent() {
    await expectBucketMatchesRows(t.services, ownerId);
    expect(await t.count('storage_deletions')).toBe(0);
    // Finished rows stay until their policy expires (a replay is swept then); none is left open.
    expect(await t.count('pending_uploads', 'closed_at IS NULL')).toBe(0);
  }

  async function uploadedNotCompleted(client: Client, replaces?: string): Promise<Policy> {
    const res = await client.postJson('/uploads/presign', {
      name: 'new.png',
      ...(replaces ? { replaces } : {}),
    });
    const policy = (await res.json()) as Policy;
    expect((await postToBucket(policy, await makePng(), 'image/png', 'new.png')).status).toBe(201);
    return policy;
  }

  it('completes one key twice at once into one image', async () => {
    for (let i = 0; i < 3; i++) {
      const policy = await uploadedNotCompleted(first);
      const [a, b] = await Promise.all([
        first.postJson('/uploads/complete', { key: policy.key }),
        second.postJson('/uploads/complete', { key: policy.key }),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const [ja, jb] = (await Promise.all([a.json(), b.json()])) as { imageId: string }[];
      expect(ja?.imageId).toBe(jb?.imageId);
      expect(await t.count('images', `id = '${ja?.imageId}'`)).toBe(1);
      expect(await t.count('pending_uploads', `key = '${policy.key}' AND image_id = '${ja?.imageId}'`)).toBe(
        1,
      );
    }
    await expectConsistent();
  });

  it('deletes and replaces one image at once from two sessions, leaving either outcome whole', async () => {
    const outcomes = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const id = await upload(first, await makePng(), `victim-${i}.png`);
      const replacement = await uploadedNotCompleted(second, id);
      const racers = [
        first.post(`/images/${id}/delete`),
        second.postJson('/uploads/complete', { key: replacement.key }),
      ];
      if (i % 2) racers.reverse();
      const statuses = await Promise.all(racers.map(async (r) => (await r).status));
      // A replacement that comes after the delete is refused: the image is in the trash.
      expect(statuses.every((s) => [200, 303, 409].includes(s))).toBe(true);
      outcomes.add(
        (await t.count('images', `id = '${id}' AND trashed_at IS NOT NULL`)) === 1 ? 'in the trash' : 'not',
      );
      await expectConsistent();
    }
    // Whatever the interleaving, a delete that answered 303 leaves the image in the trash, whole.
    expect(outcomes).toEqual(new Set(['in the trash']));
  });

  it('renames from two sessions at once: the last write wins and both see it', async () => {
    const id = await upload(first, await makePng(), 'named.png');
    await Promise.all([
      first.post(`/images/${id}/rename`, { title: 'from first' }),
      second.post(`/images/${id}/rename`, { title: 'from second' }),
    ]);
    const { title } = await t.services.database.q
      .selectFrom('images')
      .select('title')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(['from first', 'from second']).toContain(title);
    expect(await (await first.get(`/images/${id}`)).text()).toContain(title);
    await expectConsistent();
  });
});
