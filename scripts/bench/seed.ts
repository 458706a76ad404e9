/**
 * Seeds images straight into SQLite and the embedded store's files, as the benchmark needs them:
 * `npm run bench:seed -- --data-dir ./data --email someone@example.com --count 100000`.
 * The app must be stopped (the store's files are written directly). The user must exist.
 * With `--database-url postgres://…` it seeds image rows into that PostgreSQL database instead
 * (the app may run; no objects are written: the gallery page reads none, it only signs URLs).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DiskObjects } from '@s3-gallery/s3-store/disk';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import sharp from 'sharp';
import { openDatabase } from '../../src/db/connection.js';
import { imageCursor, writeCursor } from '../../src/services/cursors.js';

export interface SeedOptions {
  dataDir: string;
  email: string;
  count: number;
  /** also write an original for each image (what a bucket-listing gallery lists) */
  originals?: boolean;
}

export async function seedImages(o: SeedOptions): Promise<{ userId: string; ms: number }> {
  const started = Date.now();
  const db = openDatabase(path.join(o.dataDir, 'gallery.db'));
  const disk = new DiskObjects(path.join(o.dataDir, 'objects'));
  try {
    const userId = db.prepare('SELECT id FROM users WHERE email = ?').pluck().get(o.email) as
      | string
      | undefined;
    if (!userId) throw new Error(`no user ${o.email}: sign up first`);
    await disk.init();
    const thumb = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#c4522a' } })
      .webp({ quality: 60 })
      .toBuffer();
    const insert = db.prepare(
      `INSERT INTO images (id, owner_id, title, original_name, original_key, display_key, thumb_key, content_type,
         bytes, width, height, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'image/jpeg', ?, 4000, 3000, ?, ?)`,
    );
    const base = Date.now() - o.count * 1000;
    const write = (key: string, contentType: string) =>
      disk.write(key, Readable.from([thumb]), {
        contentType,
        metadata: {},
        maxBytes: thumb.length,
        durable: false,
      });
    const BATCH = 1000;
    for (let start = 0; start < o.count; start += BATCH) {
      const rows = Array.from({ length: Math.min(BATCH, o.count - start) }, (_, i) => {
        const id = randomUUID().replaceAll('-', '');
        const version = randomUUID();
        return {
          id,
          n: start + i,
          original: `users/${userId}/originals/${randomUUID()}`,
          display: `users/${userId}/display/${version}.webp`,
          thumb: `users/${userId}/thumbs/${version}.webp`,
        };
      });
      await pool(rows, 32, async (r) => {
        await write(r.thumb, 'image/webp');
        if (o.originals) await write(r.original, 'image/jpeg');
      });
      db.transaction(() => {
        for (const r of rows) {
          const at = base + r.n * 1000;
          insert.run(
            r.id,
            userId,
            `Seeded ${r.n}`,
            `seed-${r.n}.jpg`,
            r.original,
            r.display,
            r.thumb,
            3_500_000,
            at,
            at,
          );
        }
      })();
    }
    return { userId, ms: Date.now() - started };
  } finally {
    db.close();
  }
}

/** Rows per INSERT … SELECT FROM unnest(…): one array parameter per column, whatever the batch size. */
const PG_BATCH = 10_000;

/**
 * The same image rows as seedImages, into a migrated PostgreSQL database: multi-row inserts from
 * column arrays (a round trip per 10,000 rows), then ANALYZE, so the planner knows the table's size.
 */
export async function seedPostgresImages(o: {
  url: string;
  email: string;
  count: number;
}): Promise<{ userId: string; ms: number }> {
  const started = Date.now();
  const client = new Client({ connectionString: o.url });
  await client.connect();
  try {
    const found = await client.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [o.email]);
    const userId = found.rows[0]?.id;
    if (!userId) throw new Error(`no user ${o.email}: sign up first`);
    const base = Date.now() - o.count * 1000;
    for (let start = 0; start < o.count; start += PG_BATCH) {
      const n = Math.min(PG_BATCH, o.count - start);
      const columns = {
        id: [] as string[],
        title: [] as string[],
        original_name: [] as string[],
        original_key: [] as string[],
        display_key: [] as string[],
        thumb_key: [] as string[],
        at: [] as number[],
      };
      for (let i = start; i < start + n; i++) {
        const version = randomUUID();
        columns.id.push(randomUUID().replaceAll('-', ''));
        columns.title.push(`Seeded ${i}`);
        columns.original_name.push(`seed-${i}.jpg`);
        columns.original_key.push(`users/${userId}/originals/${randomUUID()}`);
        columns.display_key.push(`users/${userId}/display/${version}.webp`);
        columns.thumb_key.push(`users/${userId}/thumbs/${version}.webp`);
        columns.at.push(base + i * 1000);
      }
      await client.query(
        `INSERT INTO images (id, owner_id, title, original_name, original_key, display_key, thumb_key,
           content_type, bytes, width, height, created_at, updated_at)
         SELECT id, $1, title, original_name, original_key, display_key, thumb_key,
           'image/jpeg', 3500000, 4000, 3000, at, at
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
             AS r (id, title, original_name, original_key, display_key, thumb_key, at)`,
        [
          userId,
          columns.id,
          columns.title,
          columns.original_name,
          columns.original_key,
          columns.display_key,
          columns.thumb_key,
          columns.at,
        ],
      );
    }
    await client.query('ANALYZE images');
    return { userId, ms: Date.now() - started };
  } finally {
    await client.end();
  }
}

/**
 * A gallery page deep in a seeded gallery: the page link after the `nth` newest image, and the id of
 * the first image that page shows (to check that the link leads where it should).
 */
export interface DeepPage {
  nth: number;
  /** the `cursor` parameter: the nth newest image's created_at and id, in src/services/cursors.ts's codec */
  cursor: string;
  firstId: string;
}

/**
 * In the gallery's own order, newest first: the nth newest image of an account and the one after it,
 * given each dialect's placeholders for the email and the offset (nth - 1).
 */
const aroundNth = (email: string, offset: string) =>
  `SELECT i.id, i.created_at FROM images i JOIN users u ON u.id = i.owner_id
    WHERE u.email = ${email} ORDER BY i.created_at DESC, i.id DESC LIMIT 2 OFFSET ${offset}`;

function deepPage(nth: number, email: string, rows: { id: string; created_at: number | string }[]): DeepPage {
  const [at, next] = rows;
  if (!at || !next) throw new Error(`${email} has fewer than ${nth + 1} images: no page after the ${nth}th`);
  const cursor = writeCursor(imageCursor, { order: 'uploaded', sort: Number(at.created_at), id: at.id });
  return { nth, cursor, firstId: next.id };
}

/** The page after the `nth` newest image of `email`, from a data directory's SQLite file, opened read-only. */
export function sqliteDeepPage(dataDir: string, email: string, nth: number): DeepPage {
  const db = new Database(path.join(dataDir, 'gallery.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare(aroundNth('?', '?')).all(email, nth - 1) as {
      id: string;
      created_at: number;
    }[];
    return deepPage(nth, email, rows);
  } finally {
    db.close();
  }
}

/** The same page from a PostgreSQL database (created_at, a bigint, comes back as a string). */
export async function postgresDeepPage(url: string, email: string, nth: number): Promise<DeepPage> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; created_at: string }>(aroundNth('$1', '$2'), [
      email,
      nth - 1,
    ]);
    return deepPage(nth, email, rows);
  } finally {
    await client.end();
  }
}

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename ?? '');
if (isMain) {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string', default: './data' },
      'database-url': { type: 'string' },
      email: { type: 'string' },
      count: { type: 'string', default: '100000' },
      originals: { type: 'boolean', default: false },
    },
  });
  if (!values.email) {
    console.error(
      'Usage: npm run bench:seed -- --email <an existing account> [--count 100000] [--data-dir ./data | --database-url postgres://…]',
    );
    process.exit(2);
  }
  const email = values.email;
  const count = Number(values.count);
  const url = values['database-url'];
  (url
    ? seedPostgresImages({ url, email, count })
    : seedImages({
        dataDir: values['data-dir'] ?? './data',
        email,
        count,
        originals: values.originals ?? false,
      })
  ).then(
    ({ ms }) =>
      console.log(`Seeded ${values.count} images for ${values.email} in ${(ms / 1000).toFixed(1)} s.`),
    (err) => {
      console.error(`bench:seed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
