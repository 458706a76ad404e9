import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppDb, connectDatabase } from '../src/db/database.js';
import { imagesRepository } from '../src/db/repositories/images.js';
import { IMAGE_COLUMNS } from '../src/db/schema.js';
import { formatDay, formatMonth } from '../src/format.js';
import { parseCameraDetails } from '../src/services/exif.js';
import { searchWords } from '../src/services/images.js';
import { type Client, makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { all, attr, attrs, texts } from './support/html.js';
import { upload } from './support/uploads.js';

const DAY = 24 * 60 * 60 * 1000;
/** 2024-06-01 10:30 as a camera's clock reads it (stored as if it were UTC). */
const JUNE_1 = Date.UTC(2024, 5, 1, 10, 30);

describe('the timeline, search and paging that keeps its place', () => {
  let t: TestApp;
  let db: AppDb;
  let ada: Client;
  let adaId: string;
  let bob: Client;
  let bobId: string;

  /** Rows straight into the database: `takenAt` null means no EXIF date (the upload time counts). */
  async function seed(
    ownerId: string,
    rows: { title?: string; name?: string; takenAt: number | null; createdAt: number; isShared?: boolean }[],
  ): Promise<string[]> {
    const values = rows.map((r, i) => {
      const id = randomUUID().replaceAll('-', '');
      return {
        id,
        owner_id: ownerId,
        title: r.title ?? `Seeded ${i}`,
        original_name: r.name ?? `seed-${i}.png`,
        original_key: `users/${ownerId}/originals/${id}`,
        display_key: `users/${ownerId}/display/${id}.webp`,
        thumb_key: `users/${ownerId}/thumbs/${id}.webp`,
        content_type: 'image/png',
        bytes: 100,
        width: 10,
        height: 10,
        taken_at: r.takenAt,
        created_at: r.createdAt,
        updated_at: r.createdAt,
        is_shared: r.isShared ? (1 as const) : (0 as const),
      };
    });
    for (let i = 0; i < values.length; i += 200)
      await db.q
        .insertInto('images')
        .values(values.slice(i, i + 200))
        .execute();
    return values.map((v) => v.id);
  }

  const seedOne = async (ownerId: string, rows: Parameters<typeof seed>[1]) =>
    (await seed(ownerId, rows))[0] as string;

  const cardIds = (html: string) => attrs(html, 'li.thumb', 'id').map((id) => id.replace(/^image-/, ''));
  const nextHref = (html: string) => attr(html, '#load-more a', 'href');

  /** Every card of a gallery, following its "Load more" links as htmx would. */
  async function walk(client: Client, first: string) {
    let res = await client.get(first);
    expect(res.status, first).toBe(200);
    let html = await res.text();
    const pages = [html];
    const ids = cardIds(html);
    for (let href = nextHref(html); href; href = nextHref(html)) {
      res = await client.get(href.replaceAll('&amp;', '&'), { 'HX-Request': 'true' });
      expect(res.status, href).toBe(200);
      html = await res.text();
      pages.push(html);
      ids.push(...cardIds(html));
    }
    return { ids, pages };
  }

  beforeAll(async () => {
    t = await makeTestApp();
    db = await connectDatabase(t.databaseTarget);
    ada = t.client();
    await signUp(ada, 'ada@example.com');
    adaId = (await t.user('ada@example.com')).id;
    bob = await signUpWithRole(t, ada, 'bob@example.com', 'member');
    bobId = (await t.user('bob@example.com')).id;
  });
  afterAll(async () => {
    await db.close();
    await t.close();
  });

  describe('ordering and keyset pages', () => {
    let expectedTaken: string[];
    let expectedUploaded: string[];
    /** the date each card of expectedTaken is ordered by */
    let takenTimes: number[];

    beforeAll(async () => {
      // 150 images over three months of camera time, many sharing one instant (a burst), a third
      // without a date (placed at their upload time), uploaded in an order unrelated to either.
      // Upload times tie too: every pair of neighbours shares one.
      const rows = Array.from({ length: 150 }, (_, i) => ({
        takenAt: i % 3 === 0 ? null : JUNE_1 - Math.floor(i / 5) * DAY,
        createdAt: t.now() - ((Math.floor(i / 2) * 37) % 150) * 60_000,
      }));
      const ids = await seed(adaId, rows);
      const keyed = rows.map((r, i) => ({
        id: ids[i] as string,
        taken: r.takenAt ?? r.createdAt,
        uploaded: r.createdAt,
      }));
      const newestFirst = (key: 'taken' | 'uploaded') =>
        [...keyed].sort((a, b) => b[key] - a[key] || (a.id < b.id ? 1 : -1)).map((r) => r.id);
      expectedTaken = newestFirst('taken');
      const byId = new Map(keyed.map((r) => [r.id, r.taken]));
      takenTimes = expectedTaken.map((id) => byId.get(id) as number);
      expectedUploaded = newestFirst('uploaded');
    });

    it('lists every image once by date taken, the upload time standing in for an unknown date, across ties', async () => {
      const { ids, pages } = await walk(ada, '/?order=taken');
      expect(pages.length).toBe(3);
      expect(ids).toEqual(expectedTaken);
    });

    it('keeps upload order the default, with the same keyset paging', async () => {
      // Someone who has not chosen another order (the tests above chose one for ada).
      const person = ada.clone();
      person.cookies.delete('s3g_order');
      const { ids } = await walk(person, '/');
      expect(ids).toEqual(expectedUploaded);
    });

    it('remembers the order a person chose: their bare gallery address opens in it', async () => {
      const person = ada.clone();
      person.cookies.delete('s3g_order');
      expect((await person.get('/')).status).toBe(200); // upload order until another is chosen
      const chosen = await person.get('/?order=taken');
      expect(chosen.headers.getSetCookie().join()).toMatch(/s3g_order=taken;.*Max-Age=31536000/i);
      const back = await person.get('/');
      expect(back.status).toBe(303);
      expect(back.headers.get('location')).toBe('/?order=taken');
      // Any other address keeps its own order (its cursors were made for it), and htmx is never redirected.
      expect((await person.get('/?q=seed')).status).toBe(200);
      expect((await person.get('/', { 'HX-Request': 'true' })).status).toBe(200);
      // The switch names the upload order too, so choosing it is remembered as well.
      const html = await (await person.get('/?order=taken')).text();
      expect(html).toContain('href="/?order=uploaded"');
      await person.get('/?order=uploaded');
      expect((await person.get('/')).status).toBe(200);
    });

    it('carries the order in the page link: a cursor continues its own order whatever the URL says', async () => {
      const first = await (await ada.get('/?order=taken')).text();
      const href = (nextHref(first) as string).replaceAll('&amp;', '&');
      expect(href).toMatch(/^\/\?order=taken&cursor=t\d+\.[a-z0-9]+$/);
      const cursor = new URL(href, 'http://x').searchParams.get('cursor');
      const page2 = await (await ada.get(`/?cursor=${cursor}`, { 'HX-Request': 'true' })).text();
      expect(cardIds(page2)).toEqual(expectedTaken.slice(60, 120));
    });

    it('heads each month and day once, as full-width items of the one grid list, not again on the next page', async () => {
      const { pages } = await walk(ada, '/?order=taken');
      // Headings where the month (day) changes from one card to the next, in camera time.
      const changes = (format: (ms: number) => string) =>
        takenTimes.map(format).filter((label, i, labels) => i === 0 || labels[i - 1] !== label);
      const months = pages.flatMap((html) => texts(html, 'li.grid-heading.grid-month h2'));
      expect(months).toEqual(changes(formatMonth));
      expect(months).toContain('June 2024');
      const days = pages.flatMap((html) => texts(html, 'li.grid-heading.grid-day h3'));
      expect(days).toEqual(changes(formatDay));
      expect(days).toContain('Saturday 1 June');
      // A heading sits before the first card of its month or day, and nowhere else.
      const page2 = pages[1] as string;
      const startsNewDay = formatDay(takenTimes[59] as number) !== formatDay(takenTimes[60] as number);
      expect(all(page2, 'li')[0]?.classList.contains('grid-heading')).toBe(startsNewDay);
    });

    it('tells htmx the address of the gallery down to the last card loaded, and rebuilds that page from it', async () => {
      const first = await (await ada.get('/?order=taken')).text();
      const res = await ada.get((nextHref(first) as string).replaceAll('&amp;', '&'), {
        'HX-Request': 'true',
      });
      const replaced = res.headers.get('HX-Replace-Url') as string;
      expect(replaced).toMatch(/^\/\?order=taken&upto=t\d+\.[a-z0-9]+$/);
      // Back from an image reloads that address: both pages, once each, and the link to the third.
      const rebuilt = await (await ada.get(replaced)).text();
      expect(cardIds(rebuilt)).toEqual(expectedTaken.slice(0, 120));
      const third = (nextHref(rebuilt) as string).replaceAll('&amp;', '&');
      const rest = await (await ada.get(third, { 'HX-Request': 'true' })).text();
      expect(cardIds(rest)).toEqual(expectedTaken.slice(120));
    });

    it('refuses an upto or cursor that does not decode, as every page link', async () => {
      for (const bad of ['abc', 't1.2.3', 'x5.abc', '%00'])
        for (const name of ['cursor', 'upto'])
          expect((await ada.get(`/?${name}=${bad}`)).status, `${name}=${bad}`).toBe(400);
    });
  });

  describe('search', () => {
    let beach: string;
    let shared: string;
    let planB: string;

    beforeAll(async () => {
      const base = t.now() - 1000 * DAY;
      beach = await seedOne(adaId, [
        { title: 'Holiday beach', name: 'Holiday beach.jpg', takenAt: null, createdAt: base },
      ]);
      await seed(adaId, [
        { title: 'Mountain hut', name: 'IMG_0042.JPG', takenAt: null, createdAt: base - 1 },
        { title: 'Über Straße', name: 'strasse.png', takenAt: null, createdAt: base - 2 },
      ]);
      planB = await seedOne(adaId, [
        { title: 'Plan B', name: 'plan.png', takenAt: null, createdAt: base - 3 },
      ]);
      shared = await seedOne(bobId, [
        { title: 'Beach party', name: 'party.jpg', takenAt: null, createdAt: base, isShared: true },
        { title: 'Beach secret', name: 'secret.jpg', takenAt: null, createdAt: base },
      ]);
    });

    const found = async (client: Client, path: string) => {
      const res = await client.get(path);
      expect(res.status, path).toBe(200);
      return cardIds(await res.text());
    };

    it('finds by a prefix of any word of the title or the original name, every word typed', async () => {
      expect(await found(ada, '/?q=bea')).toEqual([beach]);
      expect(await found(ada, '/?q=HOLIDAY')).toEqual([beach]);
      expect(await found(ada, '/?q=jpg%20holi')).toEqual([beach]);
      expect(await found(ada, '/?q=img_0042')).toHaveLength(1);
      expect(await found(ada, '/?q=0042')).toHaveLength(1);
      expect(await found(ada, '/?q=%C3%BCber')).toHaveLength(1);
      expect(await found(ada, '/?q=beach%20mountain')).toEqual([]);
      // One letter is a whole word: as a prefix it would match most images, at the cost of a scan.
      expect(await found(ada, '/?q=b')).toEqual([planB]);
      expect(await found(ada, '/?q=h')).toEqual([]);
      expect(await found(ada, '/?q=plan%20b')).toEqual([planB]);
      // A digit alone stays a prefix: numbers spread over ten.
      expect(await found(ada, '/?q=img%200')).toHaveLength(1);
      const html = await (await ada.get('/?q=nothing-like-it')).text();
      expect(html).toContain('No images match “nothing-like-it”.');
      // Nothing to select: no Share / Delete bar above an empty grid (the search box stays).
      expect(all(html, '#bulk-delete')).toHaveLength(0);
      expect(all(await (await ada.get('/?q=bea')).text(), '#bulk-delete')).toHaveLength(1);
    });

    it('finds the same images whichever way the counts of matches send the search', async () => {
      // The plan goes by the scope's matches, not everyone's (see planOf): Ada's one zebra among
      // Cara's 1,600 is read from the matches, and Cara's own 1,600 zebras walking her index, page
      // after page. Either way the pages are the same.
      const cara = await signUpWithRole(t, ada, 'cara@example.com', 'member');
      const caraId = (await t.user('cara@example.com')).id;
      const base = t.now() - 2000 * DAY;
      const many = (word: string, n: number) =>
        Array.from({ length: n }, (_, i) => ({ title: `${word} ${i}`, takenAt: null, createdAt: base - i }));
      await seed(caraId, [...many('zebra', 1600), ...many('gnu', 5000)]);
      const [zebra, gnu] = await seed(adaId, [
        { title: 'Zebra crossing', takenAt: null, createdAt: base },
        { title: 'Gnu herd', takenAt: null, createdAt: base },
      ]);
      const plan = (scope: { ownerId: string } | { isShared: true }, word: string) =>
        imagesRepository(db).searchPlan(scope, [word]);
      expect(await plan({ ownerId: adaId }, 'zebra')).toBe('from matches');
      expect(await plan({ isShared: true }, 'zebra')).toBe('from matches');
      expect(await plan({ ownerId: caraId }, 'zeb')).toBe('walking the index');
      // Past 5,000 matches SQLite walks whatever the scope holds; PostgreSQL counts the scope's.
      expect(await plan({ ownerId: adaId }, 'gnu')).toBe(
        db.kind === 'sqlite' ? 'walking the index' : 'from matches',
      );
      expect(await found(ada, '/?q=zebra')).toEqual([zebra]);
      expect(await found(ada, '/?q=gnu')).toEqual([gnu]);
      const { ids } = await walk(cara, '/?q=zeb');
      expect(new Set(ids).size).toBe(1600);
      expect(ids).toHaveLength(1600);
    });

    it('searches only the gallery it is in: your own, shared ones on /shared, anyone’s for an admin', async () => {
      expect(await found(bob, '/?q=beach')).toHaveLength(2);
      expect(await found(ada, '/shared?q=beach')).toEqual([shared]);
      expect(await found(ada, `/users/${bobId}?q=secret`)).toHaveLength(1);
      expect((await bob.get(`/users/${adaId}?q=beach`)).status).toBe(403);
    });

    it('follows renames, the trash and deletes (the index is kept by the database)', async () => {
      const [id] = await seed(adaId, [{ title: 'Old name', name: 'x.png', takenAt: null, createdAt: 1 }]);
      const actor = { user: await t.user('ada@example.com'), ip: 'test' };
      await t.services.images.rename(actor, id as string, 'Lighthouse');
      expect(await found(ada, '/?q=lighth')).toEqual([id]);
      expect(await found(ada, '/?q=old')).toEqual([]);
      // PostgreSQL keeps the words in a column of images (search_words): a row read whole does not carry them.
      const row = await imagesRepository(db).get(id as string);
      expect(Object.keys(row ?? {}).sort()).toEqual([...IMAGE_COLUMNS].sort());
      await t.services.images.trash(actor, [id as string]);
      expect(await found(ada, '/?q=lighth')).toEqual([]);
      await t.services.images.restore(actor, [id as string]);
      expect(await found(ada, '/?q=lighth')).toEqual([id]);
      await t.services.images.trash(actor, [id as string]);
      await t.services.images.deleteForever(actor, [id as string]);
      expect(await found(ada, '/?q=lighth')).toEqual([]);
    });

    it('reads what is typed as words only: quotes, operators, NUL and 10,000 characters are safe', async () => {
      expect(searchWords('"bea* OR NEAR(a b) -x AND ^y:z \'; DROP TABLE images; --')).toEqual([
        'bea',
        'or',
        'near',
        'a',
        'b',
        'x',
        'and',
        'y',
      ]);
      for (const typed of [
        '"',
        "'",
        '*',
        'bea*',
        'NOT',
        'a:*',
        '\0',
        '\\',
        '&|!():*<->',
        'x'.repeat(10_000),
        '🌅',
      ]) {
        const res = await ada.get(`/?q=${encodeURIComponent(typed)}`);
        expect(res.status, typed.slice(0, 20)).toBe(200);
      }
      expect(await found(ada, `/?q=${encodeURIComponent('"bea*')}`)).toEqual([beach]);
    });

    it('never fails on any search text (fuzz)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 80 }), async (typed) => {
          for (const path of ['/', '/shared', '/?order=taken']) {
            const sep = path.includes('?') ? '&' : '?';
            const res = await ada.get(`${path}${sep}q=${encodeURIComponent(typed)}`);
            expect(res.status, JSON.stringify(typed)).toBe(200);
          }
        }),
        { numRuns: 60 },
      );
    });
  });

  describe('camera time and details', () => {
    it('shows EXIF’s date as the camera’s clock, without "UTC", and the camera’s settings', async () => {
      const bytes = await sharp({
        create: { width: 64, height: 48, channels: 3, background: { r: 9, g: 99, b: 199 } },
      })
        .jpeg()
        .withExifMerge({
          IFD0: { Make: 'Canon', Model: 'Canon EOS R5' },
          IFD2: {
            DateTimeOriginal: '2024:06:01 10:30:00',
            ExposureTime: '1/250',
            FNumber: '28/10',
            ISOSpeedRatings: '400',
            FocalLength: '50/1',
            LensModel: 'RF50mm F1.8 STM',
          },
        })
        .toBuffer();
      const id = await upload(bob, bytes, 'canon.jpg');
      await t.settle();
      const html = await (await bob.get(`/images/${id}`)).text();
      const details = Object.fromEntries(
        all(html, '.details dt').map((dt) => [dt.text, dt.nextElementSibling?.text]),
      );
      expect(details).toMatchObject({
        Taken: '1 Jun 2024, 10:30',
        Camera: 'Canon EOS R5',
        Lens: 'RF50mm F1.8 STM',
        Exposure: '1/250 s, f/2.8',
        'Focal length': '50 mm',
        ISO: '400',
      });
      // The timeline files it under its camera date, not its upload time.
      const timeline = await (await bob.get('/?order=taken')).text();
      expect(texts(timeline, 'li.grid-month h2')).toContain('June 2024');
    });

    it('reads stored details through the schema: damaged or odd JSON shows nothing wrong', () => {
      expect(parseCameraDetails('{"make":"Nikon","iso":-3,"lens":""}')).toEqual({ make: 'Nikon' });
      expect(parseCameraDetails('not json')).toBeNull();
      expect(parseCameraDetails('[1,2]')).toBeNull();
      expect(parseCameraDetails('{"model":"\\u202eevil"}')).toEqual({ model: 'evil' });
    });
  });
});
