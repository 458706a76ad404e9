import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, attrs, hiddenForm, text } from './support/html.js';
import { makePng } from './support/images.js';
import { type Policy, postToBucket, upload } from './support/uploads.js';

const DAY = 24 * 60 * 60 * 1000;

describe('the trash', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  let aliceId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    aliceId = (await t.user('alice@example.com')).id;
  });
  afterAll(() => t.close());

  const keysOf = async (id: string) => {
    const image = await t.services.images.getForUser(await t.user('admin@example.com'), id);
    return [image.originalKey, image.displayKey, image.thumbKey];
  };
  const cardIds = async (client: Client, path: string) =>
    attrs(await (await client.get(path)).text(), '#grid > li.thumb', 'id').map((id) =>
      id.replace(/^image-/, ''),
    );

  it('hides a deleted image everywhere but keeps its files, and Undo brings it back', async () => {
    const id = await upload(alice, await makePng(60, 40), 'Lighthouse.png');
    const kept = await upload(alice, await makePng(60, 40), 'Harbour.png');
    await t.settle();
    await alice.post(`/images/${id}/visibility`, { shared: '1' });
    const album = await alice.post('/albums', { name: 'Coast', ids: id });
    expect(album.status).toBe(303);
    const albumPath = (album.headers.get('location') as string).split('?')[0] as string;
    const { token } = await t.services.shares.create(
      { user: await t.user('alice@example.com'), ip: 't' },
      [id],
      {
        expiry: '1d',
        allowDownload: false,
      },
    );
    expect((await t.client().get(`/s/${token}`)).status).toBe(200);

    // Without scripts: Delete asks first, saying it goes to the trash; then back to the gallery with Undo.
    expect(text(await (await alice.get(`/images/${id}/delete`)).text(), 'main p')).toContain(
      'goes to the trash, where you can restore it for 30 days',
    );
    const del = await alice.post(`/images/${id}/delete`);
    expect(del.status).toBe(303);
    const location = new URL(del.headers.get('location') as string, t.config.appOrigin);
    expect(location.pathname).toBe('/');
    expect(location.searchParams.get('trashed')).toBe('1');
    const gallery = await (await alice.get(location.pathname + location.search)).text();
    expect(text(gallery, '.notice.undo p')).toBe('Moved 1 image to the trash.');
    expect(await cardIds(alice, '/')).toEqual([kept]);
    expect(await cardIds(alice, '/?q=lighthouse')).toEqual([]);
    expect(await cardIds(bob, '/shared')).toEqual([]);
    expect(await cardIds(alice, albumPath)).toEqual([]);
    expect((await t.client().get(`/s/${token}`)).status).toBe(410);
    // Its owner still opens it, told where it is; anyone else finds nothing.
    const page = await (await alice.get(`/images/${id}`)).text();
    expect(text(page, '#trash-heading')).toBe('This image is in the trash');
    expect(attr(page, 'form[action$="/rename"]', 'action')).toBeUndefined();
    expect((await bob.get(`/images/${id}`)).status).toBe(404);
    expect((await bob.get(`/images/${id}/download`)).status).toBe(404);
    // Nothing else is done to it until it is restored.
    expect((await alice.post(`/images/${id}/rename`, { title: 'x' })).status).toBe(409);
    expect((await alice.post(`/images/${id}/shares`, { expiry: '1d' })).status).toBe(409);
    // The files stay, and still count.
    for (const key of await keysOf(id)) expect(await t.services.storage.head(key)).not.toBeNull();
    const account = await (await alice.get('/account')).text();
    expect(text(account, '.usage p')).toContain('2 images, 1 of them in the trash');

    // Undo, as the notice's form sends it: the image is back everywhere.
    const undo = hiddenForm(gallery, '.notice.undo form');
    expect(undo.action).toBe('/trash/undo');
    const undone = await alice.postForm('/trash/undo', undo.fields);
    expect(undone.headers.get('location')).toBe('/?restored=1');
    expect(await (await alice.get('/?restored=1')).text()).toContain('Restored 1 image.');
    expect((await cardIds(alice, '/')).sort()).toEqual([kept, id].sort());
    expect(await cardIds(bob, '/shared')).toEqual([id]);
    expect(await cardIds(alice, albumPath)).toEqual([id]);
    expect((await t.client().get(`/s/${token}`)).status).toBe(200);
  });

  it('undoes only that press of Delete, and only for someone who may', async () => {
    const [a, b, c] = [
      await upload(alice, await makePng(), 'a.png'),
      await upload(alice, await makePng(), 'b.png'),
      await upload(alice, await makePng(), 'c.png'),
    ];
    const first = await alice.postForm('/images/delete', [
      ['ids', a as string],
      ['ids', b as string],
      ['confirm', 'yes'],
    ]);
    t.advance(1000);
    await alice.post(`/images/${c}/delete`);
    const firstPress = new URL(first.headers.get('location') as string, t.config.appOrigin).searchParams;
    expect(firstPress.get('trashed')).toBe('2');
    const fields: [string, string][] = [
      ['owner', aliceId],
      ['at', firstPress.get('at') as string],
    ];
    // Bob cannot undo it (he may not change her images): nothing comes back.
    expect((await bob.postForm('/trash/undo', fields)).status).toBe(404);
    expect(await t.count('images', `id IN ('${a}', '${b}') AND trashed_at IS NULL`)).toBe(0);
    // A made-up time restores nothing and says nothing.
    expect(
      (
        await alice.postForm('/trash/undo', [
          ['owner', aliceId],
          ['at', '1e9'],
        ])
      ).headers.get('location'),
    ).toBe('/?restored=0');
    await alice.postForm('/trash/undo', fields);
    expect(await t.count('images', `id IN ('${a}', '${b}') AND trashed_at IS NULL`)).toBe(2);
    expect(await t.count('images', `id = '${c}' AND trashed_at IS NOT NULL`)).toBe(1);
    await alice.post('/trash/empty', { owner: aliceId, confirm: 'yes' });
  });

  it('turns a card into its Undo for htmx, and Undo puts the card back', async () => {
    const id = await upload(alice, await makePng(), 'card.png');
    const trashed = await alice.post(`/images/${id}/delete`, {}, { 'HX-Request': 'true' });
    expect(trashed.status).toBe(200);
    const fragment = await trashed.text();
    expect(text(fragment, 'p')).toBe('“card” is in the trash.');
    expect(attr(fragment, 'form', 'hx-post')).toBe(`/images/${id}/restore`);
    // Pressed twice: still in the trash, once (one audit row).
    expect((await alice.post(`/images/${id}/delete`, {}, { 'HX-Request': 'true' })).status).toBe(200);
    expect(await t.count('audit_log', `action = 'trash' AND target = '${id}'`)).toBe(1);
    const restored = await alice.post(`/images/${id}/restore`, {}, { 'HX-Request': 'true' });
    expect(attr(await restored.text(), 'li.thumb', 'id')).toBe(`image-${id}`);
    expect(await t.count('audit_log', `action = 'restore' AND target = '${id}'`)).toBe(1);
    await t.services.images.trash({ user: await t.user('alice@example.com'), ip: 't' }, [id]);
    await alice.post('/trash/empty', { owner: aliceId, confirm: 'yes' });
  });

  it('lists the trash with the days left, restores, deletes forever and empties it', async () => {
    const ids = [
      await upload(alice, await makePng(), 'one.png'),
      await upload(alice, await makePng(), 'two.png'),
      await upload(alice, await makePng(), 'three.png'),
    ] as [string, string, string];
    const empty = await (await alice.get('/trash')).text();
    expect(text(empty, '.empty h2')).toBe('The trash is empty');
    await alice.postForm('/images/delete', [
      ...ids.map((id): [string, string] => ['ids', id]),
      ['confirm', 'yes'],
    ]);
    t.advance(3 * DAY);
    const page = await (await alice.get('/trash')).text();
    expect(attrs(page, '.trash-grid > li', 'id')).toHaveLength(3);
    expect(text(page, `#image-${ids[0]} .thumb-note`)).toBe('27 days left');

    // Restore one, from its own button.
    const restore = await alice.post('/trash/restore', { ids: ids[0], back: '/trash' });
    expect(restore.headers.get('location')).toBe('/trash?restored=1');
    expect(await cardIds(alice, '/')).toContain(ids[0]);

    // Delete forever asks first; then the files are gone.
    const keys = await keysOf(ids[1]);
    const ask = await alice.post('/trash/delete', { ids: ids[1], back: '/trash' });
    expect(text(await ask.text(), 'h1')).toBe('Delete “two” forever?');
    expect(await t.services.storage.head(keys[0] as string)).not.toBeNull();
    const gone = await alice.post('/trash/delete', { ids: ids[1], back: '/trash', confirm: 'yes' });
    expect(gone.headers.get('location')).toBe('/trash?deleted=1');
    for (const key of keys) expect(await t.services.storage.head(key)).toBeNull();
    expect((await alice.get(`/images/${ids[1]}`)).status).toBe(404);
    // Only what is in the trash is deleted forever: the restored one stays.
    await alice.post('/trash/delete', { ids: ids[0], confirm: 'yes' });
    expect(await t.count('images', `id = '${ids[0]}'`)).toBe(1);

    // Bob can neither see nor empty her trash; an admin can see it.
    expect((await bob.post('/trash/empty', { owner: aliceId, confirm: 'yes' })).status).toBe(404);
    expect((await bob.get(`/users/${aliceId}/trash`)).status).toBe(403);
    const theirs = await (await admin.get(`/users/${aliceId}/trash`)).text();
    expect(text(theirs, 'h1')).toBe('Trash of alice@example.com');
    expect(attrs(theirs, '.trash-grid > li', 'id')).toEqual([`image-${ids[2]}`]);

    // Empty asks first, with how many; then everything in it goes.
    const askEmpty = await alice.post('/trash/empty', { owner: aliceId });
    expect(text(await askEmpty.text(), 'h1')).toBe('Empty the trash (1 image)?');
    const emptied = await alice.post('/trash/empty', { owner: aliceId, confirm: 'yes' });
    expect(emptied.headers.get('location')).toBe('/trash?emptied=1');
    expect(await t.count('images', `owner_id = '${aliceId}' AND trashed_at IS NOT NULL`)).toBe(0);
  });

  it('keeps the file a trashed image had when a replacement finishes after the delete', async () => {
    const id = await upload(alice, await makePng(50, 50), 'kept.png');
    await t.settle();
    const before = await keysOf(id);
    const presign = await alice.postJson('/uploads/presign', { name: 'newer.png', replaces: id });
    const policy = (await presign.json()) as Policy;
    expect((await postToBucket(policy, await makePng(80, 80), 'image/png', 'newer.png')).status).toBe(201);
    await alice.post(`/images/${id}/delete`);
    const done = await alice.postJson('/uploads/complete', { key: policy.key });
    expect(done.status).toBe(409);
    expect(((await done.json()) as { error: string }).error).toContain('moved to the trash');
    // Restored, it is the image it was, with its files.
    await alice.post('/trash/restore', { ids: id });
    expect(await keysOf(id)).toEqual(before);
    for (const key of before) expect(await t.services.storage.head(key)).not.toBeNull();
    await t.services.images.trash({ user: await t.user('alice@example.com'), ip: 't' }, [id]);
    await alice.post('/trash/empty', { owner: aliceId, confirm: 'yes' });
  });

  it('empties the trash twice at once, and leaves what was deleted after the press', async () => {
    const ids = [
      await upload(alice, await makePng(), 'x.png'),
      await upload(alice, await makePng(), 'y.png'),
      await upload(alice, await makePng(), 'z.png'),
    ];
    await alice.postForm('/images/delete', [
      ['ids', ids[0] as string],
      ['ids', ids[1] as string],
      ['confirm', 'yes'],
    ]);
    t.advance(1);
    const presses = await Promise.all([
      alice.post('/trash/empty', { owner: aliceId, confirm: 'yes' }),
      alice.clone().post('/trash/empty', { owner: aliceId, confirm: 'yes' }),
    ]);
    expect(presses.map((r) => r.status)).toEqual([303, 303]);
    const emptied = presses.map((r) =>
      Number(new URL(r.headers.get('location') as string, 'http://x').searchParams.get('emptied')),
    );
    expect((emptied[0] ?? 0) + (emptied[1] ?? 0)).toBe(2);
    expect(await t.count('audit_log', `action = 'delete' AND target IN ('${ids[0]}', '${ids[1]}')`)).toBe(2);
    // The purge's and Empty's bound: an image deleted after the moment asked about stays.
    await alice.post(`/images/${ids[2]}/delete`);
    expect(await t.services.images.purgeTrash(0)).toBe(0);
    expect(await t.count('images', `id = '${ids[2]}'`)).toBe(1);
    t.advance(1);
    expect(await t.services.images.purgeTrash(0)).toBe(1);
  });

  it('purges what has been there TRASH_DAYS on the server’s schedule, once across instances', async () => {
    const old = [
      await upload(alice, await makePng(), 'old.png'),
      await upload(alice, await makePng(), 'older.png'),
    ];
    await alice.postForm('/images/delete', [
      ...old.map((id): [string, string] => ['ids', id]),
      ['confirm', 'yes'],
    ]);
    const keys = (await Promise.all(old.map(keysOf))).flat();
    t.advance(20 * DAY);
    const recent = await upload(alice, await makePng(), 'recent.png');
    await alice.post(`/images/${recent}/delete`);
    t.advance(10 * DAY + 1);
    const log = pino({ level: 'silent' });
    // Two instances' schedules at once: the lease lets one purge, and each image goes once.
    const [one, two] = await Promise.all([
      t.services.trashPurge.purgeScheduled(30, log),
      t.services.images.purgeTrash(30),
    ]);
    expect((one ?? 0) + two).toBe(2);
    expect(await t.count('images', `id IN ('${old.join("','")}')`)).toBe(0);
    // A renditions run the moved clock cut short writes its copies again, then drops them (no row
    // names them): the bucket is checked once the workers are done.
    await t.settle();
    for (const key of keys) expect(await t.services.storage.head(key)).toBeNull();
    const audited = await t.count(
      'audit_log',
      `action = 'delete' AND detail = 'in the trash for too long' AND actor_id IS NULL AND target IN ('${old.join("','")}')`,
    );
    expect(audited).toBe(2);
    // The one trashed ten days ago stays, with twenty days left.
    expect(await t.count('images', `id = '${recent}' AND trashed_at IS NOT NULL`)).toBe(1);
    expect(text(await (await alice.get('/trash')).text(), `#image-${recent} .thumb-note`)).toBe(
      '20 days left',
    );
  });
});
