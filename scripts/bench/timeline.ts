/**
 * The timeline and search at 100,000 images, on the repository's own queries (no HTTP): p50 and
 * p99 of each query on SQLite and, when one answers, PostgreSQL, beside the plain first page.
 * `BENCH_ONLY=timeline npm run bench` (BENCH_IMAGES to change the count). A query's p99 must stay
 * under 20 ms (issue 16).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { type AppDb, connectDatabase } from '../../src/db/database.js';
import { imagesRepository, type PageQuery } from '../../src/db/repositories/images.js';
import { searchWords } from '../../src/services/images.js';
import { freshPostgres, postgresIsReachable } from '../../test/support/postgres.js';
import { fmt, percentile, type Row } from './table.js';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 100_000);
/** The other person's images: more than FEW_MATCHES, so a count of everyone's would call it many. */
const OTHERS = 3000;
const RUNS = 200;
const WORDS = [
  'beach',
  'mountain',
  'holiday',
  'sunset',
  'family',
  'garden',
  'city',
  'snow',
  'river',
  'party',
];
const DAY = 86_400_000;

/**
 * `count` images of a new user's, titled by `titleOf`; a tenth shared when `share` is set. The
 * bench's owner has IMAGES; another has OTHERS with a word the owner's images lack.
 */
async function seed(
  db: AppDb,
  ownerId: string,
  count: number,
  titleOf: (i: number) => string,
  share: boolean,
) {
  await db.q
    .insertInto('users')
    .values({
      id: ownerId,
      email: `${ownerId}@example.com`,
      password_hash: 'x',
      role: 'member',
      created_at: 0,
    })
    .execute();
  const now = Date.UTC(2026, 0, 1);
  for (let start = 0; start < count; start += 1000) {
    const rows = Array.from({ length: Math.min(1000, count - start) }, (_, k) => {
      const i = start + k;
      const id = `${ownerId}${String(i).padStart(8, '0')}`;
      return {
        id,
        owner_id: ownerId,
        title: titleOf(i),
        original_name: `IMG_${i}.jpg`,
        original_key: `o/${id}`,
        display_key: `d/${id}`,
        thumb_key: `t/${id}`,
        content_type: 'image/jpeg',
        bytes: 1,
        width: 1,
        height: 1,
        // A quarter have no date taken; the rest spread over ten years, bursts sharing an instant.
        taken_at: i % 4 === 0 ? null : now - Math.floor(((i * 7919) % IMAGES) / 3) * (DAY / 30),
        created_at: now - i * 1000,
        updated_at: now,
        is_shared: (share && i % 10 === 0 ? 1 : 0) as 0 | 1,
      };
    });
    await db.q.insertInto('images').values(rows).execute();
  }
}

/** p50 and p99 of a query, after 20 runs to warm up. */
async function time(run: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 20; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await run();
    ms.push(performance.now() - t0);
  }
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

type Timed = { label: string; p50: number; p99: number };

/** Every query timed on one database, printed as it goes: the baseline, the timeline's, the searches. */
async function bench(
  name: string,
  db: AppDb,
): Promise<{ baseline: Timed; timeline: Timed[]; search: Timed[] }> {
  const t0 = performance.now();
  await seed(db, 'owner', IMAGES, (i) => `${WORDS[i % 10]} ${WORDS[(i * 7) % 10]} ${i}`, true);
  await seed(db, 'other', OTHERS, (i) => `zebra crossing ${i}`, false);
  // As autovacuum does after a bulk load, before the timing rather than during it: without
  // statistics PostgreSQL misjudges the search.
  if (db.kind === 'postgres') await sql`VACUUM ANALYZE images`.execute(db.q);
  console.log(`${name}: ${IMAGES} + ${OTHERS} images seeded in ${fmt((performance.now() - t0) / 1000)} s`);
  const images = imagesRepository(db);
  const q = (over: Partial<PageQuery>): PageQuery => ({ order: 'taken', after: null, limit: 61, ...over });
  const deep = (await images.listPage('owner', q({ limit: 50_000 }))).at(-1);
  const after = deep ? { sort: deep.taken_sort, id: deep.id } : null;
  const timed = async (label: string, run: () => Promise<unknown>): Promise<Timed> => {
    const t = { label, ...(await time(run)) };
    console.log(
      `  ${label.padEnd(52)} p50 ${fmt(t.p50, 2).padStart(6)} ms  p99 ${fmt(t.p99, 2).padStart(6)} ms`,
    );
    return t;
  };
  const baseline = await timed('upload order, first page', () =>
    images.listPage('owner', q({ order: 'uploaded' })),
  );
  const timeline = [
    await timed('timeline, first page', () => images.listPage('owner', q({}))),
    await timed('timeline, 50,000 deep', () => images.listPage('owner', q({ after }))),
    await timed('timeline, shared', () => images.listShared(q({}))),
  ];
  const search: Timed[] = [];
  for (const typed of ['bea', 'beach', 'beach sun', 's', 'img_4242', '99999', 'zzz'])
    search.push(await timed(`"${typed}"`, () => images.listPage('owner', q({ words: searchWords(typed) }))));
  search.push(
    await timed('"mountain", shared, 50,000 deep', () =>
      images.listShared(q({ words: searchWords('mountain'), after })),
    ),
    // Words only another person's images hold: the count of matches is the owner's (or the shared
    // images'), so neither walks its whole index looking for them.
    await timed(`"zebra", another person's word`, () =>
      images.listPage('owner', q({ words: searchWords('zebra') })),
    ),
    await timed(`"zebra", shared`, () => images.listShared(q({ words: searchWords('zebra') }))),
  );
  return { baseline, timeline, search };
}

const worst = (ts: Timed[]) => ts.reduce((a, b) => (b.p99 > a.p99 ? b : a));

function rowsOf(dialect: string, r: Awaited<ReturnType<typeof bench>>): Row[] {
  const base = `${fmt(r.baseline.p50, 2)} / ${fmt(r.baseline.p99, 2)} ms (upload order, first page)`;
  const row = (what: string, ts: Timed[]): Row => {
    const w = worst(ts);
    return {
      measure: `${what} at ${IMAGES} images on ${dialect}, ${ts.length} queries of 61 cards: p50 / p99 of the one with the worst p99`,
      ours: `${fmt(w.p50, 2)} / ${fmt(w.p99, 2)} ms (${w.label})`,
      baseline: base,
      ratio: `${fmt(w.p99 / r.baseline.p99, 1)}× the p99`,
      target: 'p99 < 20 ms',
      met: w.p99 < 20,
    };
  };
  return [
    row('Timeline (date taken: first page, 50,000 deep, shared)', r.timeline),
    row(
      "Search (prefixes, two words, one letter, a file name, none found, shared and deep, another person's word)",
      r.search,
    ),
  ];
}

/**
 * The rows of `npm run bench` for issue 16: the timeline's and search's queries on SQLite and,
 * when one answers, PostgreSQL, beside the plain first page of the same database.
 */
export async function timelineRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3g-bench-timeline-'));
  try {
    const sqlite = await connectDatabase({ sqliteFile: path.join(dir, 'gallery.db') });
    rows.push(...rowsOf('SQLite', await bench('SQLite', sqlite)));
    await sqlite.close();
    if (await postgresIsReachable()) {
      const server = await freshPostgres(undefined, 's3g_bench');
      const pg = await connectDatabase({ url: server.url });
      rows.push(...rowsOf('PostgreSQL', await bench('PostgreSQL', pg)));
      await pg.close();
      await server.drop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
