import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { attr, hiddenForm, text } from './support/html.js';
import { makePng } from './support/images.js';

const MiB = 1024 * 1024;

/** The address of the link the owner just made, as the page shows it once. */
async function makeLink(owner: Client, fields: Record<string, string> = {}) {
  const made = await owner.post('/guest-links', {
    label: 'Wedding',
    message: 'Send us your photos!',
    expiry: '7d',
    max_files: '',
    max_mib: '',
    max_file_mib: '',
    notify: '1',
    ...fields,
  });
  expect(made.status, await made.clone().text()).toBe(303);
  const html = await (await owner.get('/guest-links')).text();
  const url = attr(html, '#new-share-link', 'value') ?? '';
  expect(url).toMatch(/\/u\/[a-z2-7]{32}$/);
  return new URL(url).pathname;
}

/** Opens a guest page as a browser does: a first visit is sent back once with its cookie. */
async function open(guest: Client, path: string): Promise<Response> {
  const first = await guest.get(path);
  if (first.status !== 303) return first;
  return guest.get(first.headers.get('location') as string);
}

/**
 * What a guest's browser without JavaScript does: open the page, post the file straight to the
 * bucket with the page's form, and follow the bucket's redirect back to the app.
 */
async function guestSends(guest: Client, path: string, png: Buffer, name = 'guest.png') {
  const page = await open(guest, path);
  expect(page.status, await page.clone().text()).toBe(200);
  const { action, fields } = hiddenForm(await page.text(), '#upload-form');
  const form = new FormData();
  for (const [k, v] of fields) form.append(k, k === 'Content-Type' ? 'image/png' : v);
  form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), name);
  const stored = await fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
  expect(stored.status, await stored.clone().text()).toBe(303);
  const back = new URL(stored.headers.get('location') as string);
  return `${back.pathname}${back.search}`;
}

describe('guest upload links', () => {
  let t: TestApp;
  let owner: Client;
  let ownerId: string;
  let admin: Client;

  beforeAll(async () => {
    // Emails are queued in the outbox (nothing listens on port 9: none is delivered here).
    t = await makeTestApp({
      env: { SIGNUP: 'open', SIGNUPS_PER_IP_PER_HOUR: '1000', SMTP_URL: 'smtp://127.0.0.1:9' },
    });
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    owner = t.client();
    await signUp(owner, 'owner@example.com');
    ownerId = (await t.user('owner@example.com')).id;
  });
  afterAll(() => t.close());

  /** The id of the owner's link with this label. */
  async function linkId(label: string): Promise<string> {
    const links = await t.services.guestLinks.list(await t.user('owner@example.com'));
    return links.find((l) => l.label === label)?.id ?? '';
  }

  it('lets someone without an account send a photo into the owner’s gallery, without JavaScript', async () => {
    const path = await makeLink(owner);
    const guest = t.client();
    const page = await open(guest, path);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('x-robots-tag')).toContain('noindex');
    const html = await page.text();
    expect(text(html, 'h1')).toBe('Wedding');
    expect(html).toContain('Send us your photos!');
    expect(html).toContain('Up to 100 more files');
    // The form's key is under the owner's prefix; the bucket sends the browser back to this link.
    const { fields } = hiddenForm(html, '#upload-form');
    const key = fields.find(([k]) => k === 'key')?.[1] ?? '';
    expect(key.startsWith(`users/${ownerId}/uploads/`)).toBe(true);

    const back = await guestSends(guest, path, await makePng(64, 48), 'ana.png');
    expect(back.startsWith(`${path}/complete?`)).toBe(true);
    const done = await guest.get(back);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`${path}?sent=1`);
    const after = await (await guest.get(`${path}?sent=1`)).text();
    expect(after).toContain('your file was received');
    // A plain form's file is named for the link (its key names no file: see the exact-key test).
    expect(text(after, '.guest-sent .guest-sent-title')).toBe('Wedding');

    expect(await t.count('images', `owner_id = '${ownerId}' AND guest_link_id IS NOT NULL`)).toBe(1);
    expect(await t.count('audit_log', `action = 'guest_upload'`)).toBe(1);
    expect(await t.count('changes', `action = 'guest_upload'`)).toBe(1);
    // The admin hears of it, and so does the link's owner (the link says so unless unticked).
    expect(await t.count('outbox', `channel = 'email' AND recipient = 'admin@example.com'`)).toBe(1);
    expect(await t.count('outbox', `channel = 'email' AND recipient = 'owner@example.com'`)).toBe(1);
    // The owner sees it in their gallery; the link's row counts it.
    expect(await (await owner.get('/')).text()).toContain('Wedding');
    expect(await (await owner.get('/guest-links')).text()).toContain('1 of 100 files');
    // The link's own page opens what it brought.
    const brought = await (await owner.get(`/guest-links/${await linkId('Wedding')}`)).text();
    expect(brought).toMatch(/href="\/images\/[0-9a-f]{32}"/);
    expect(brought).toContain(`action="/guest-links/${await linkId('Wedding')}/revoke"`);
    // Another browser (another visit) sees nothing of it, and cannot complete it again.
    const stranger = t.client();
    expect(await (await open(stranger, path)).text()).not.toContain('You sent');
    expect((await stranger.get(back)).status).toBe(404);
  });

  it('keeps N of N+1 files completed at once on an N-file link, and then takes no more', async () => {
    const path = await makeLink(owner, { label: 'Two only', max_files: '2' });
    const guests = [t.client(), t.client(), t.client()];
    const files = await Promise.all(guests.map((_, i) => makePng(20 + i, 20)));
    const backs = await Promise.all(
      guests.map((g, i) => guestSends(g, path, files[i] as Buffer, `g${i}.png`)),
    );
    const answers = await Promise.all(guests.map((g, i) => g.get(backs[i] as string)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([303, 303, 410]);
    expect(
      await t.count('images', `guest_link_id IN (SELECT id FROM guest_links WHERE label = 'Two only')`),
    ).toBe(2);
    // Full: the page says so and signs nothing.
    const full = await open(t.client(), path);
    expect(full.status).toBe(413);
    expect(await full.text()).toContain('takes no more files');
  });

  it('signs a guest’s form for the link’s size a file', async () => {
    const path = await makeLink(owner, { label: 'Small', max_mib: '1', max_file_mib: '1' });
    const html = await (await open(t.client(), path)).text();
    const policy = JSON.parse(
      Buffer.from(
        hiddenForm(html, '#upload-form').fields.find(([k]) => k === 'Policy')?.[1] ?? '',
        'base64',
      ).toString(),
    ) as { conditions: unknown[] };
    const range = policy.conditions.find(
      (c) => Array.isArray(c) && c[0] === 'content-length-range',
    ) as number[];
    expect(range[2]).toBe(MiB);
  });

  it('answers 410 for a link turned off, expired, or of a disabled owner, and signs nothing', async () => {
    const revoked = await makeLink(owner, { label: 'Off' });
    const id = await linkId('Off');
    expect((await owner.post(`/guest-links/${id}/revoke`)).status).toBe(303);
    const gone = await t.client().get(revoked);
    expect(gone.status).toBe(410);
    expect(await gone.text()).not.toContain('upload-form');

    const hourly = await makeLink(owner, { label: 'Soon gone', expiry: '1h' });
    t.advance(61 * 60 * 1000);
    expect((await t.client().get(hourly)).status).toBe(410);

    const member = t.client();
    await signUp(member, 'leaving@example.com');
    const theirs = await makeLink(member, { label: 'Theirs' });
    const memberId = (await t.user('leaving@example.com')).id;
    expect((await admin.post(`/admin/users/${memberId}/disable`)).status).toBe(303);
    expect((await t.client().get(theirs)).status).toBe(410);
    expect((await t.client().get('/u/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(404);
  });

  it('turns a link on again at the same address, still counting what it took; not once it has expired', async () => {
    const path = await makeLink(owner, { label: 'Switch', max_files: '3' });
    const guest = t.client();
    const back = await guestSends(guest, path, await makePng(20, 20));
    expect((await guest.get(back)).status).toBe(303);
    const id = await linkId('Switch');
    expect((await owner.post(`/guest-links/${id}/revoke`)).status).toBe(303);
    expect((await t.client().get(path)).status).toBe(410);
    // Someone else cannot turn it on.
    const stranger = t.client();
    await signUp(stranger, 'stranger@example.com');
    expect((await stranger.post(`/guest-links/${id}/turn-on`)).status).toBe(404);
    expect((await t.client().get(path)).status).toBe(410);

    const list = await (await owner.get('/guest-links')).text();
    expect(attr(list, `form[action="/guest-links/${id}/turn-on"] button`, 'type')).toBe('submit');
    const turnedOn = await owner.post(`/guest-links/${id}/turn-on`);
    expect(turnedOn.status).toBe(303);
    expect(await (await owner.get(turnedOn.headers.get('location') as string)).text()).toContain(
      'Link turned on again',
    );
    const reopened = await open(t.client(), path);
    expect(reopened.status).toBe(200);
    expect(await reopened.text()).toContain('Up to 2 more files');
    expect(await t.count('audit_log', `action = 'guest_link_turn_on' AND target = '${id}'`)).toBe(1);
    // Once more is nothing new: no second audit row, and the notice says so.
    const again = await owner.post(`/guest-links/${id}/turn-on`);
    expect(again.status).toBe(303);
    expect(await (await owner.get(again.headers.get('location') as string)).text()).toContain(
      'That link was in use already.',
    );
    expect(await t.count('audit_log', `action = 'guest_link_turn_on' AND target = '${id}'`)).toBe(1);

    // A link that expired while it was off stays off, and says why; its page offers no button.
    const hourly = await makeLink(owner, { label: 'Off then expired', expiry: '1h' });
    const hourlyId = await linkId('Off then expired');
    expect((await owner.post(`/guest-links/${hourlyId}/revoke`)).status).toBe(303);
    t.advance(61 * 60 * 1000);
    const own = await (await owner.get(`/guest-links/${hourlyId}`)).text();
    expect(own).not.toContain(`/guest-links/${hourlyId}/turn-on`);
    const refused = await owner.post(`/guest-links/${hourlyId}/turn-on`);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('This link has expired: make a new one.');
    expect((await t.client().get(hourly)).status).toBe(410);
    // Nor does one that expired in use: a refusal, not a notice that it was turned on.
    const lapsed = await makeLink(owner, { label: 'Lapsed', expiry: '1h' });
    const lapsedId = await linkId('Lapsed');
    t.advance(61 * 60 * 1000);
    const notOn = await owner.post(`/guest-links/${lapsedId}/turn-on`);
    expect(notOn.status).toBe(400);
    expect(await notOn.text()).not.toContain('Link turned on again');
    expect((await t.client().get(lapsed)).status).toBe(410);

    // A link whose owner cannot upload now (disabled) is not turned on for them, by an admin either.
    const member = t.client();
    await signUp(member, 'away@example.com');
    await makeLink(member, { label: 'Away' });
    const awayId = (await t.services.guestLinks.list(await t.user('away@example.com')))[0]?.id ?? '';
    expect((await member.post(`/guest-links/${awayId}/revoke`)).status).toBe(303);
    const memberId = (await t.user('away@example.com')).id;
    expect((await admin.post(`/admin/users/${memberId}/disable`)).status).toBe(303);
    // Everyone's list offers no button for it; pressed anyway, the refusal comes back to that list.
    const everyones = await (await admin.get('/guest-links?all=1')).text();
    expect(everyones).toContain('Away');
    expect(everyones).not.toContain(`/guest-links/${awayId}/turn-on`);
    const forNobody = await admin.post(`/guest-links/${awayId}/turn-on?all=1`);
    expect(forNobody.status).toBe(400);
    const refusal = await forNobody.text();
    expect(refusal).toContain('cannot upload now');
    expect(refusal).toContain('away@example.com');
    expect(await t.count('audit_log', `action = 'guest_link_turn_on' AND target = '${awayId}'`)).toBe(0);
    // Nor for an owner made a viewer; and a viewer cannot turn on anything, whatever asks.
    const demoted = await signUpWithRole(t, admin, 'demoted@example.com', 'member');
    await makeLink(demoted, { label: 'Demoted' });
    const demotedUser = await t.user('demoted@example.com');
    const demotedId = (await t.services.guestLinks.list(demotedUser))[0]?.id ?? '';
    expect((await demoted.post(`/guest-links/${demotedId}/revoke`)).status).toBe(303);
    expect((await admin.post(`/admin/users/${demotedUser.id}/role`, { role: 'viewer' })).status).toBe(303);
    expect((await admin.post(`/guest-links/${demotedId}/turn-on`)).status).toBe(400);
    const asViewer = { user: await t.user('demoted@example.com'), ip: 'test' };
    await expect(t.services.guestLinks.turnOn(asViewer, demotedId)).rejects.toThrow('Viewers cannot');

    // An admin making a link from everyone's list comes back to it, where the new address shows once.
    const fromAll = await admin.post('/guest-links?all=1', { label: 'From everyone', expiry: '7d' });
    expect(fromAll.status).toBe(303);
    expect(fromAll.headers.get('location')).toBe('/guest-links?all=1');
    const listed = await (await admin.get('/guest-links?all=1')).text();
    expect(attr(listed, '#new-share-link', 'value')).toMatch(/\/u\/[a-z2-7]{32}$/);
    expect(listed).toContain('away@example.com');
  });

  it('holds each owner to 50 links in use, when made at once and when turned on again', async () => {
    const maker = t.client();
    await signUp(maker, 'many-links@example.com');
    const make = (label: string) => maker.post('/guest-links', { label, expiry: '7d' });
    for (let i = 0; i < 48; i++) expect((await make(`Link ${i}`)).status).toBe(303);
    const atOnce = await Promise.all(Array.from({ length: 5 }, (_, i) => make(`At once ${i}`)));
    expect(atOnce.map((r) => r.status).sort()).toEqual([303, 303, 400, 400, 400]);
    const full = atOnce.find((r) => r.status === 400) as Response;
    expect(await full.text()).toContain('50 upload links of this account in use');
    const mine = await t.services.guestLinks.list(await t.user('many-links@example.com'));
    expect(mine).toHaveLength(50);
    // One turned off makes room for one more; then the one turned off may not come back.
    const first = mine.find((l) => l.label === 'Link 0')?.id ?? '';
    expect((await maker.post(`/guest-links/${first}/revoke`)).status).toBe(303);
    expect((await make('One more')).status).toBe(303);
    expect((await make('One too many')).status).toBe(400);
    const back = await maker.post(`/guest-links/${first}/turn-on`);
    expect(back.status).toBe(400);
    expect(await back.text()).toContain('Turn some off first');
  });

  it('refuses a file posted after the link was turned off, and keeps nothing of it', async () => {
    const path = await makeLink(owner, { label: 'Cut' });
    const guest = t.client();
    const back = await guestSends(guest, path, await makePng(30, 30));
    const id = await linkId('Cut');
    expect((await owner.post(`/guest-links/${id}/revoke`)).status).toBe(303);
    expect((await guest.get(back)).status).toBe(410);
    expect(await t.count('images', `guest_link_id = '${id}'`)).toBe(0);
    // The sweep settles the file left in the bucket: refused (the link is off), deleted, audited.
    t.advance(26 * 60 * 1000);
    await t.services.uploadSweeper.sweep({ apply: true });
    expect(await t.count('images', `guest_link_id = '${id}'`)).toBe(0);
    expect(await t.count('audit_log', `action = 'guest_upload_refused' AND target = '${id}'`)).toBe(1);
    const key = new URL(`http://x${back}`).searchParams.get('key') ?? '';
    expect(await t.services.storage.head(key)).toBeNull();
  });

  it('signs nothing for another key: a guest’s form writes only its own staging prefix', async () => {
    const path = await makeLink(owner, { label: 'Tamper' });
    const html = await (await open(t.client(), path)).text();
    const { action, fields } = hiddenForm(html, '#upload-form');
    for (const key of [`users/${ownerId}/originals/x.png`, 'users/someone/uploads/x/y.png', 'x.png']) {
      const form = new FormData();
      for (const [k, v] of fields) form.append(k, k === 'key' ? key : k === 'Content-Type' ? 'image/png' : v);
      form.append('file', new Blob([new Uint8Array(await makePng(10, 10))], { type: 'image/png' }), 'x.png');
      const res = await fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
      expect(res.status, key).toBe(403);
    }
  });

  it('signs nothing for a browser that keeps no cookie, and limits new visits from one address', async () => {
    const path = await makeLink(owner, { label: 'Busy', max_files: '1', max_mib: '1' });
    // Without its cookie, the page the first visit comes back to has no form, and holds no room.
    for (let i = 0; i < 5; i++) {
      const first = await t.client().get(path);
      expect(first.status).toBe(303);
      const cookieless = await t.client().get(first.headers.get('location') as string);
      expect(cookieless.status).toBe(400);
      expect(await cookieless.text()).toContain('needs a cookie');
    }
    expect(await t.count('pending_uploads', `guest_link_id = '${await linkId('Busy')}'`)).toBe(0);
    // A guest who keeps cookies still gets the whole link.
    expect((await open(t.client(), path)).status).toBe(200);
    // 100 new visits an hour from one address (5 above, 1 kept, 94 more), then 429.
    const statuses: number[] = [];
    for (let i = 0; i < 95; i++) statuses.push((await t.client().get(path)).status);
    expect(statuses.slice(0, 94).every((s) => s === 303)).toBe(true);
    expect(statuses[94]).toBe(429);
    // New visits are counted in the audit log, one row per link and address; the refusals too.
    await t.services.audit.flushCounts(true);
    const linkRows = await t.services.database.q
      .selectFrom('audit_log')
      .select(['action', 'detail'])
      .where('target', '=', await linkId('Busy'))
      .execute();
    expect(linkRows.find((r) => r.action === 'guest_open')?.detail).toMatch(/^100 visit\(s\) between /);
    expect(await t.count('audit_log', `action = 'throttled' AND target = 'guest link'`)).toBe(1);
    // A visit that has its cookie goes on; the owner's own uploads were never held by any of it.
    expect((await owner.postJson('/uploads/presign', { name: 'x.png', size: 100 })).status).toBe(200);
  });

  it('keeps a guest’s form to one exact key, named for the link', async () => {
    const path = await makeLink(owner, { label: 'Exact' });
    const guest = t.client();
    const back = await guestSends(guest, path, await makePng(12, 12), 'private-name.png');
    const key = new URL(`http://x${back}`).searchParams.get('key') ?? '';
    expect(key).toMatch(new RegExp(`^users/${ownerId}/uploads/[0-9a-f-]{36}$`));
    expect((await guest.get(back)).status).toBe(303);
    const row = await t.services.database.q
      .selectFrom('images')
      .select(['title', 'original_name'])
      .where('guest_link_id', '=', await linkId('Exact'))
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ title: 'Exact', original_name: 'Exact' });
  });

  it('keeps nothing a guest sent once the owner is disabled, even when the sweep completes it', async () => {
    const member = t.client();
    await signUp(member, 'swept@example.com');
    const memberId = (await t.user('swept@example.com')).id;
    const path = await makeLink(member, { label: 'Swept' });
    const guest = t.client();
    await guestSends(guest, path, await makePng(14, 14)); // the redirect is never followed
    expect((await admin.post(`/admin/users/${memberId}/disable`)).status).toBe(303);
    t.advance(26 * 60 * 1000);
    const report = await t.services.uploadSweeper.sweep({ apply: true });
    expect(report.rejected.length + report.completed.length).toBeGreaterThan(0);
    expect(await t.count('images', `owner_id = '${memberId}'`)).toBe(0);
  });

  it('tells a guest refused for the owner’s quota about the gallery, not about “your” quota', async () => {
    const member = t.client();
    await signUp(member, 'tight@example.com');
    const memberId = (await t.user('tight@example.com')).id;
    const path = await makeLink(member, { label: 'Tight' });
    const guest = t.client();
    const back = await guestSends(guest, path, await makePng(16, 16));
    expect((await admin.post(`/admin/users/${memberId}/quota`, { mib: '', images: '0' })).status).toBe(303);
    const refused = await guest.get(back);
    expect(refused.status).toBe(413);
    const words = await refused.text();
    expect(words).toContain('The gallery this link uploads to has no room');
    expect(words).not.toMatch(/your (limit|storage quota)/i);
  });

  it('asks for the link’s password first, throttles wrong guesses, and the pass is this visit’s alone', async () => {
    const path = await makeLink(owner, { label: 'Locked', password: 'open sesame' });
    const guest = t.client();
    const gate = await open(guest, path);
    expect(gate.status).toBe(401);
    const html = await gate.text();
    expect(html).toContain('This link’s password');
    expect(html).not.toContain('id="upload-form"');
    // Nothing is signed for a visit without the pass, by the script's route either.
    expect((await guest.postJson(`${path}/presign`, { name: 'x.png', size: 10 })).status).toBe(401);
    const wrong = await guest.post(path, { password: 'nope nope', name: '' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('not the password');
    // On a link that also asks for names, a wrong password keeps the name typed beside it.
    const named = await makeLink(owner, { label: 'Locked, named', password: 'open sesame', ask_name: '1' });
    const aunt = t.client();
    await open(aunt, named);
    const retry = await aunt.post(named, { password: 'not it at all', name: ' Ana <the aunt>\u200b\u0007 ' });
    expect(retry.status).toBe(401);
    // Kept as it would be stored: invisible and control characters out.
    expect(attr(await retry.text(), '#guest-name', 'value')).toBe('Ana <the aunt>');
    const right = await guest.post(path, { password: 'open sesame', name: '' });
    expect(right.status).toBe(303);
    const unlocked = await guest.get(path);
    expect(unlocked.status).toBe(200);
    expect(await unlocked.text()).toContain('id="upload-form"');
    // Another browser with a copy of the pass but its own visit is asked again.
    const other = t.client();
    await open(other, path);
    for (const [name, value] of guest.cookies) if (name.includes('pass')) other.cookies.set(name, value);
    expect((await other.get(path)).status).toBe(401);
    // At most ten wrong guesses per address in 15 minutes (the one above counts), then 429: the
    // right password too, until the wait is over.
    const guesser = t.client();
    await open(guesser, path);
    const answers: number[] = [];
    for (let i = 0; i < 10; i++)
      answers.push((await guesser.post(path, { password: `wrong ${i}x`, name: '' })).status);
    expect(answers.filter((s) => s === 401).length).toBeGreaterThanOrEqual(9);
    expect(answers.at(-1)).toBe(429);
    expect((await guesser.post(path, { password: 'open sesame', name: '' })).status).toBe(429);
  });

  it('asks guests for their name when the link says so, keeps it with the file, and fills the link’s album', async () => {
    const album = await owner.post('/albums', { name: 'From guests' });
    const albumId = album.headers.get('location')?.split('?')[0]?.split('/').pop() ?? '';
    const path = await makeLink(owner, { label: 'Named', ask_name: '1', album: albumId, notify: '' });
    const emailsBefore = await t.count('outbox', `recipient = 'owner@example.com'`);
    const guest = t.client();
    const gate = await open(guest, path);
    expect(await gate.text()).toContain('Your name');
    expect((await guest.postJson(`${path}/presign`, { name: 'x.png', size: 10 })).status).toBe(400);
    expect((await guest.post(path, { password: '', name: 'Ana “the aunt”' })).status).toBe(303);
    const back = await guestSends(guest, path, await makePng(18, 18));
    expect((await guest.get(back)).status).toBe(303);
    const row = await t.services.database.q
      .selectFrom('images')
      .select(['id', 'guest_name'])
      .where('guest_link_id', '=', await linkId('Named'))
      .executeTakeFirstOrThrow();
    expect(row.guest_name).toBe('Ana “the aunt”');
    // This link was made with "email me" unticked: the owner is not emailed of it.
    expect(await t.count('outbox', `recipient = 'owner@example.com'`)).toBe(emailsBefore);
    expect(await t.count('album_images', `album_id = '${albumId}' AND image_id = '${row.id}'`)).toBe(1);
    // The owner's image page says where it came from, and who sent it.
    const details = await (await owner.get(`/images/${row.id}`)).text();
    expect(details).toContain('through the link “Named”, sent by Ana “the aunt”');
    // Someone else's album is not one a link may fill.
    const other = t.client();
    await signUp(other, 'albumless@example.com');
    const refused = await other.post('/guest-links', { label: 'X', expiry: '1d', album: albumId });
    expect(refused.status).toBe(400);
  });

  it('keeps nothing a guest sends again with a form already used: the file is told it was not kept', async () => {
    const path = await makeLink(owner, { label: 'Replayed' });
    const guest = t.client();
    const page = await open(guest, path);
    const { action, fields } = hiddenForm(await page.text(), '#upload-form');
    const post = async (png: Buffer) => {
      const form = new FormData();
      for (const [k, v] of fields) form.append(k, k === 'Content-Type' ? 'image/png' : v);
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'x.png');
      const stored = await fetch(action as string, { method: 'POST', body: form, redirect: 'manual' });
      const back = new URL(stored.headers.get('location') as string);
      return `${back.pathname}${back.search}`;
    };
    expect((await guest.get(await post(await makePng(20, 20)))).status).toBe(303);
    const again = await guest.get(await post(await makePng(21, 21)));
    expect(again.status).toBe(409);
    expect(await t.count('images', `guest_link_id = '${await linkId('Replayed')}'`)).toBe(1);
  });

  it('lets viewers make no link; only owners and admins turn one off', async () => {
    const viewer = await signUpWithRole(t, admin, 'viewer@example.com', 'viewer');
    expect((await viewer.get('/guest-links')).status).toBe(403);
    const path = await makeLink(owner, { label: 'Mine' });
    const other = t.client();
    await signUp(other, 'other@example.com');
    const id = await linkId('Mine');
    expect((await other.post(`/guest-links/${id}/revoke`)).status).toBe(404);
    expect((await open(t.client(), path)).status).toBe(200);
    expect((await admin.get('/guest-links?all=1')).status).toBe(200);
    expect(await (await admin.get('/guest-links?all=1')).text()).toContain('Mine');
  });
});

describe('with GUEST_LINKS=off', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open', GUEST_LINKS: 'off' } });
  });
  afterAll(() => t.close());

  it('makes no link and takes nothing through one', async () => {
    const owner = t.client();
    await signUp(owner, 'owner@example.com');
    const made = await owner.post('/guest-links', { label: 'No', expiry: '1d' });
    expect(made.status).toBe(410);
    expect(await made.text()).toContain('turned off on this server');
    expect((await t.client().get('/u/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(410);
  });
});
