import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { makeJpeg } from './support/images.js';
import { deleteForGood, upload } from './support/uploads.js';

/**
 * Changes made to the bucket with a tool (the SDK here, as the AWS CLI would), picked up as the
 * store reports them: no reconcile run.
 */
describe('live pickup of changes made outside the app', () => {
  let t: TestApp;
  let alice: Client;
  let aliceId: string;

  beforeAll(async () => {
    t = await makeTestApp({ livePickup: true });
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    aliceId = (await t.user('alice@example.com')).id;
  });
  afterAll(() => t.close());

  /** A tool's own request, signed with the store's key, as `aws s3 cp` sends it. */
  const put = (Key: string, Body: Buffer | string) =>
    t.store.client.send(new PutObjectCommand({ Bucket: t.store.bucket, Key, Body }));
  const remove = (Key: string) =>
    t.store.client.send(new DeleteObjectCommand({ Bucket: t.store.bucket, Key }));
  const changesOf = async (action: string) =>
    t.services.database.q
      .selectFrom('changes')
      .select(['image_id', 'summary'])
      .where('action', '=', action)
      .execute();

  it('makes an original put into a user’s prefix their image within seconds, and tells the admins', async () => {
    await put(`users/${aliceId}/originals/harbour at dawn.jpg`, await makeJpeg(600, 400));
    await t.services.outsideChanges.idle();
    await t.settle();
    const rows = await t.services.database.q
      .selectFrom('images')
      .select(['id', 'title', 'state', 'original_key'])
      .where('owner_id', '=', aliceId)
      .execute();
    expect(rows.map((r) => [r.title, r.state])).toEqual([['harbour at dawn', 'ready']]);
    expect(await changesOf('outside_upload')).toEqual([
      { image_id: rows[0]?.id, summary: '“harbour at dawn”' },
    ]);
    expect(await (await alice.get('/')).text()).toContain('harbour at dawn');
  });

  it('leaves the app’s own writes and deletes alone: an upload and a delete for good are no outside change', async () => {
    const before = (await changesOf('outside_upload')).length;
    const id = await upload(alice, await makeJpeg(300, 200), 'mine.jpg');
    await t.settle();
    await deleteForGood(alice, id);
    await t.services.outsideChanges.idle();
    expect(await changesOf('outside_upload')).toHaveLength(before);
    expect(await changesOf('outside_delete')).toEqual([]);
    expect(await t.count('images', `owner_id = '${aliceId}'`)).toBe(1);
  });

  it('moves an image whose original a tool deleted to the trash, and tells the admins', async () => {
    const id = await upload(alice, await makeJpeg(300, 200), 'doomed.jpg');
    await t.settle();
    await t.services.outsideChanges.idle();
    const row = await t.services.database.q
      .selectFrom('images')
      .select(['original_key'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    await remove(row.original_key);
    await t.services.outsideChanges.idle();
    const after = await t.services.database.q
      .selectFrom('images')
      .select(['trashed_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(after.trashed_at).not.toBeNull();
    expect(await changesOf('outside_delete')).toEqual([{ image_id: id, summary: '“doomed”' }]);
    expect(await (await alice.get('/')).text()).not.toContain('doomed');
    expect(await (await alice.get('/trash')).text()).toContain('doomed');
    expect(await t.count('audit_log', `action = 'outside_delete' AND target = '${id}'`)).toBe(1);
  });

  it('processes an original a tool overwrote again (same id and title), and fails one overwritten with text', async () => {
    const first = await makeJpeg(400, 300);
    const id = await upload(alice, first, 'tide.jpg');
    await t.settle();
    await t.services.outsideChanges.idle();
    const rowOf = () =>
      t.services.database.q
        .selectFrom('images')
        .select(['original_key', 'original_etag', 'thumb_key', 'width', 'state', 'failure', 'title'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    const before = await rowOf();
    expect(before.original_etag).toMatch(/^[0-9a-f]{32}$/);
    // The same bytes again: the same ETag, nothing to do.
    await put(before.original_key, first);
    await t.services.outsideChanges.idle();
    expect(await changesOf('outside_replace')).toEqual([]);

    await put(before.original_key, await makeJpeg(200, 500));
    await t.services.outsideChanges.idle();
    await t.settle();
    const after = await rowOf();
    expect([after.title, after.state, after.width]).toEqual(['tide', 'ready', 200]);
    expect(after.original_key).toBe(before.original_key);
    expect(after.original_etag).not.toBe(before.original_etag);
    expect(after.thumb_key).not.toBe(before.thumb_key);
    expect(await t.services.storage.head(before.thumb_key)).toBeNull();
    expect(await t.services.storage.head(after.thumb_key)).not.toBeNull();
    expect(await changesOf('outside_replace')).toEqual([{ image_id: id, summary: '“tide”' }]);

    await put(before.original_key, 'not a picture any more');
    await t.services.outsideChanges.idle();
    const failed = await rowOf();
    expect(failed.state).toBe('failed');
    expect(failed.failure).toContain('is not a JPEG');
    expect(await changesOf('outside_replace')).toHaveLength(2);
  });

  it('refuses a file that is not an image, and passes over keys that are not originals', async () => {
    const before = await t.count('images');
    await put(`users/${aliceId}/originals/notes.txt`, 'just words');
    await put(`users/${aliceId}/thumbs/stray.webp`, 'x');
    await put('elsewhere/file.jpg', await makeJpeg(10, 10));
    await t.services.outsideChanges.idle();
    expect(await t.count('images')).toBe(before);
    // Its pending row went with the refusal.
    expect(await t.count('pending_uploads', "key LIKE '%/originals/notes.txt'")).toBe(0);
  });
});

/** What no event told of (an external bucket, a change while the app was down): reconcile, and its schedule. */
describe('reconcile catches overwrites and deletions of originals', () => {
  let t: TestApp;
  let alice: Client;

  beforeAll(async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
  });
  afterAll(() => t.close());

  const originalOf = (id: string) =>
    t.services.database.q
      .selectFrom('images')
      .select(['original_key', 'original_etag', 'width', 'state', 'trashed_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('reports, then processes again an overwritten original and trashes an image whose original is gone', async () => {
    const kept = await upload(alice, await makeJpeg(300, 200), 'kept.jpg');
    const changed = await upload(alice, await makeJpeg(300, 200), 'changed.jpg');
    const gone = await upload(alice, await makeJpeg(300, 200), 'gone.jpg');
    await t.settle();
    // A minute later, as a tool would change them while no one listens.
    t.advance(60_000);
    await t.store.client.send(
      new PutObjectCommand({
        Bucket: t.store.bucket,
        Key: (await originalOf(changed)).original_key,
        Body: await makeJpeg(120, 90),
      }),
    );
    await t.store.client.send(
      new DeleteObjectCommand({ Bucket: t.store.bucket, Key: (await originalOf(gone)).original_key }),
    );

    const dry = await t.services.reconcile.run({ apply: false });
    expect(dry.overwritten).toEqual([changed]);
    expect(dry.missing).toEqual([gone]);
    expect((await originalOf(gone)).trashed_at).toBeNull();

    const applied = await t.services.reconcile.run({ apply: true });
    expect([applied.overwritten, applied.missing]).toEqual([[changed], [gone]]);
    await t.settle();
    expect((await originalOf(changed)).width).toBe(120);
    expect((await originalOf(gone)).trashed_at).not.toBeNull();
    expect((await originalOf(kept)).state).toBe('ready');
    // Once settled, a second run finds nothing more to do.
    const again = await t.services.reconcile.run({ apply: true });
    expect([again.overwritten, again.missing]).toEqual([[], []]);
  });

  it('runs on its own schedule until stopped', async () => {
    const id = await upload(alice, await makeJpeg(300, 200), 'scheduled.jpg');
    await t.settle();
    t.advance(60_000);
    await t.store.client.send(
      new DeleteObjectCommand({ Bucket: t.store.bucket, Key: (await originalOf(id)).original_key }),
    );
    const { pino } = await import('pino');
    const stop = t.services.reconcile.startSchedule(pino({ level: 'silent' }), 100);
    try {
      await vi.waitFor(async () => expect((await originalOf(id)).trashed_at).not.toBeNull(), {
        timeout: 10_000,
      });
    } finally {
      await stop();
    }
  });
});
