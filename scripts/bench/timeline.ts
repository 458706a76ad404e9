/**
 * The timeline and search at 100,000 images, on the repository's own queries (no HTTP): p50 and
 * p99 of each query on SQLite and, when one answers, PostgreSQL. `npx tsx scripts/bench/timeline.ts`
 * (BENCH_IMAGES to change the count). A query's p99 must stay under 20 ms (issue 16).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { type AppDb, connectDatabase } from '../../src/db/database.js';
import { imagesRepository, type PageQuery } from '../../src/db/repositories/images.js';
import { searchWords } from '../../src/services/images.js';
import { freshPostgres, postgresIsReachable } from '../../test/support/postgres.js';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 100_000);
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

async function seed(db: AppDb, ownerId: string) {
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
  for (let start = 0; start < IMAGES; start += 1000) {
    const rows = Array.from({ length: Math.min(1000, IMAGES - start) }, (_, k) => {
      const i = start + k;
      const id = `img${String(i).padStart(8, '0')}`;
      return {
        id,
        owner_id: ownerId,
        title: `${WORDS[i % 10]} ${WORDS[(i * 7) % 10]} ${i}`,
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
        is_shared: (i % 10 === 0 ? 1 : 0) as 0 | 1,
      };
    });
    await db.q.insertInto('images').values(rows).execute();
  }
}

async function time(label: string, run: () => Promise<unknown>) {
  for (let i = 0; i < 20; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await run();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => (ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] as number).toFixed(2);
  console.log(`  ${label.padEnd(52)} p50 ${at(0.5).padStart(6)} ms  p99 ${at(0.99).padStart(6)} ms`);
}

async function bench(name: string, db: AppDb) {
  const t0 = performance.now();
  await seed(db, 'owner');
  // As autovacuum would after a bulk load: without statistics PostgreSQL misjudges the search.
  if (db.kind === 'postgres') await sql`ANALYZE images`.execute(db.q);
  console.log(`${name}: ${IMAGES} images seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const images = imagesRepository(db);
  const q = (over: Partial<PageQuery>): PageQuery => ({ order: 'taken', after: null, limit: 61, ...over });
  const deep = (await images.listPage('owner', q({ limit: 50_000 }))).at(-1);
  const after = deep ? { sort: deep.taken_sort, id: deep.id } : null;
  await time('timeline, first page', () => images.listPage('owner', q({})));
  await time('timeline, 50,000 deep', () => images.listPage('owner', q({ after })));
  await time('timeline, shared', () => images.listShared(q({})));
  await time('upload order, 50,000 deep', () =>
    images.listPage(
      'owner',
      q({ order: 'uploaded', after: { sort: Date.UTC(2026, 0, 1) - 50_000_000, id: 'z' } }),
    ),
  );
  for (const typed of ['bea', 'beach', 'beach sun', 's', 'img_4242', '99999', 'zzz'])
    await time(`search "${typed}", taken order`, () =>
      images.listPage('owner', q({ words: searchWords(typed) })),
    );
  await time('search "mountain", shared, 50,000 deep', () =>
    images.listShared(q({ words: searchWords('mountain'), after })),
  );
}

const dir = mkdtempSync(path.join(os.tmpdir(), 's3g-bench-timeline-'));
try {
  const sqlite = await connectDatabase({ sqliteFile: path.join(dir, 'gallery.db') });
  await bench('SQLite', sqlite);
  await sqlite.close();
  if (await postgresIsReachable()) {
    const server = await freshPostgres(undefined, 's3g_bench');
    const pg = await connectDatabase({ url: server.url });
    await bench('PostgreSQL', pg);
    await pg.close();
    await server.drop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
