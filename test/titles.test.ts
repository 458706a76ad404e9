import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, makeTestApp, signUp, type TestApp } from './support/app.js';
import { makePng } from './support/images.js';
import { upload } from './support/uploads.js';

/** Invisible characters that reorder or hide text (Unicode general category Cf), and line separators. */
const INVISIBLE = [
  '\u200e', // left-to-right mark
  '\u200f', // right-to-left mark
  '\u202a', // left-to-right embedding
  '\u202b', // right-to-left embedding
  '\u202c', // pop directional formatting
  '\u202d', // left-to-right override
  '\u202e', // right-to-left override
  '\u2066', // left-to-right isolate
  '\u2067', // right-to-left isolate
  '\u2068', // first strong isolate
  '\u2069', // pop directional isolate
  '\u061c', // Arabic letter mark
  '\u200b', // zero-width space
  '\u2060', // word joiner
  '\ufeff', // byte order mark
  '\u00ad', // soft hyphen
  '\u180e', // Mongolian vowel separator
  '\u{e0001}', // language tag
  '\u2028', // line separator
  '\u2029', // paragraph separator
];

describe('titles and names', () => {
  let t: TestApp;
  let alice: Client;
  let imageId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    alice = t.client();
    await signUp(alice, 'alice@example.com');
    imageId = await upload(alice, await makePng(), 'start.png');
  });
  afterAll(() => t.close());

  const stored = (id: string) =>
    t.services.database.q
      .selectFrom('images')
      .select(['title', 'original_name'])
      .where('id', '=', id)
      .executeTakeFirst();

  async function rename(title: string) {
    const res = await alice.post(`/images/${imageId}/rename`, { title });
    return { status: res.status, title: (await stored(imageId))?.title };
  }

  it('drops a right-to-left override that would show "exe.png" as "gnp.exe"', async () => {
    expect(await rename('holiday\u202egnp.exe')).toEqual({ status: 303, title: 'holidaygnp.exe' });
    const page = await (await alice.get(`/images/${imageId}`)).text();
    expect(page).toContain('holidaygnp.exe');
    expect(page).not.toContain('\u202e');
  });

  it('drops every bidi control, zero-width and format character, wherever it stands', async () => {
    for (const ch of INVISIBLE) {
      const what = `U+${ch.codePointAt(0)?.toString(16)}`;
      expect(await rename(`${ch}a${ch}b${ch}${ch}c${ch}`), what).toEqual({ status: 303, title: 'abc' });
    }
  });

  it('refuses a title made only of invisible characters', async () => {
    const res = await alice.post(`/images/${imageId}/rename`, { title: ` ${INVISIBLE.join('')} ` });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Give the image a title.');
  });

  it('keeps emoji sequences, flags and the joiners Persian and Hindi spelling need', async () => {
    for (const title of [
      '👩🏽‍💻 at work',
      '👨‍👩‍👧‍👦 family',
      '🏳️‍🌈 parade',
      '🏴󠁧󠁢󠁳󠁣󠁴󠁿 Edinburgh',
      'می‌خواهم', // ZWNJ between two Persian letters
      'क्‍ष', // ZWJ after a virama
    ]) {
      expect(await rename(title), title).toEqual({ status: 303, title });
    }
  });

  it('leaves no dangling joiner where the length cap cuts an emoji sequence', async () => {
    const { title } = await rename(`${'a'.repeat(198)}👩‍💻`);
    expect(title).toBe(`${'a'.repeat(198)}👩`);
  });

  it('cleans the name of an original put into the bucket from outside the app', async () => {
    const aliceId = (await t.user('alice@example.com')).id;
    const key = `users/${aliceId}/originals/\u202egnp.exe\u200b.png`;
    await t.services.storage.put(key, await makePng(), 'image/png');
    const report = await t.services.reconcile.run({ apply: true });
    expect(report.imported).toEqual([key]);
    const row = await t.services.database.q
      .selectFrom('images')
      .select('id')
      .where('original_name', 'like', '%gnp%')
      .executeTakeFirstOrThrow();
    expect(await stored(row.id)).toEqual({ title: 'gnp.exe', original_name: 'gnp.exe.png' });
  });

  it('writes out, in the audit log, the bidi controls of a typed email, refused or throttled, or of an outside key', async () => {
    const typed = '\u202emoc.elpmaxe@nimda\u2066';
    for (let i = 0; i < 6; i++)
      await t.client().post('/login', { email: typed, password: 'wrong password!' });
    await t.services.audit.flushCounts(true);
    const rows = await t.services.database.q
      .selectFrom('audit_log')
      .select(['action', 'target', 'detail'])
      .where('action', 'in', ['login_failed', 'throttled'])
      .orderBy('id')
      .execute();
    expect(rows.map((r) => r.action)).toEqual([...Array(5).fill('login_failed'), 'throttled']);
    for (const row of rows) expect(`${row.target} ${row.detail}`).not.toMatch(/\p{Cf}/u);
    // Written out, not dropped: the log shows what was typed.
    expect(rows[0]?.target).toBe('<U+202E>moc.elpmaxe@nimda<U+2066>');
    expect(rows[5]?.detail).toContain('for <U+202E>moc.elpmaxe@nimda<U+2066>');

    const aliceId = (await t.user('alice@example.com')).id;
    await t.services.storage.put(`users/${aliceId}/originals/\u2067x.png`, await makePng(), 'image/png');
    await t.services.reconcile.run({ apply: true });
    const imported = await t.services.database.q
      .selectFrom('audit_log')
      .select('target')
      .where('action', '=', 'outside_upload')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    expect(imported?.target).toBe(`users/${aliceId}/originals/<U+2067>x.png`);
  });

  it('cleans the file name an upload brings, and the title made from it', async () => {
    const id = await upload(alice, await makePng(), '\u2067cat\u2069\u202e\u200bgnp.exe.png');
    expect(await stored(id)).toEqual({ title: 'catgnp.exe', original_name: 'catgnp.exe.png' });
  });
});
