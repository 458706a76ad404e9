/// <reference lib="dom" />

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connection.js';
import { createStorage } from '../../src/storage/s3.js';
import {
  BROWSER_TEST_TIMEOUT_MS,
  launchBrowser,
  newContext,
  PATIENTLY,
  signUpIn,
  skipBrowser,
} from '../support/browser.js';
import { makeJpeg, noisyPng } from '../support/images.js';
import { startAppServer } from '../support/server.js';

const MiB = 1024 * 1024;

/**
 * Large files from the upload page with JavaScript: sent in parts straight to the bucket, a part
 * whose connection drops sent again by itself, Cancel giving the upload up; without JavaScript the
 * same file goes as the one form post it always was.
 */
describe.skipIf(skipBrowser)('large uploads in parts in a real browser', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;
  let big: Buffer;

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    browser = await launchBrowser();
    big = await noisyPng(17 * MiB);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  const row = (page: Page, name: string) => page.locator('#upload-list li').filter({ hasText: name });

  /** PUTs of parts to the bucket, by part number; `handle` may take one instead of the bucket. */
  async function partPuts(
    page: Page,
    handle?: (n: number, attempt: number, route: Route) => Promise<boolean>,
  ) {
    const seen: number[] = [];
    await page.route(
      (url) => url.pathname.startsWith('/s3/') && url.searchParams.has('partNumber'),
      async (route) => {
        if (route.request().method() !== 'PUT') return route.continue();
        const n = Number(new URL(route.request().url()).searchParams.get('partNumber'));
        seen.push(n);
        const attempt = seen.filter((m) => m === n).length;
        if (handle && (await handle(n, attempt, route))) return;
        return route.continue();
      },
    );
    return seen;
  }

  /** The person's uploads (their page's own form, and each file of upload.js), oldest first. */
  function pendingOf(email: string) {
    const db = openDatabase(path.join(app.dataDir, 'gallery.db'));
    try {
      return db
        .prepare(
          `SELECT p.key, p.closed_at AS closedAt, p.multipart_id AS multipartId, p.image_id AS imageId
           FROM pending_uploads p JOIN users u ON u.id = p.owner_id WHERE u.email = ? ORDER BY p.created_at`,
        )
        .all(email) as {
        key: string;
        closedAt: number | null;
        multipartId: string | null;
        imageId: string | null;
      }[];
    } finally {
      db.close();
    }
  }

  it('sends a 17 MiB photo in three parts beside a small one, and sends a dropped part again by itself, on a phone', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'parts@example.com');
    // Part 2's first try loses its connection half way.
    const puts = await partPuts(page, async (n, attempt, route) => {
      if (n !== 2 || attempt !== 1) return false;
      await route.abort('connectionreset');
      return true;
    });
    const posts: string[] = [];
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname.startsWith('/s3/')) posts.push(req.url());
    });
    await page.goto(`${app.origin}/upload`);
    await page.getByLabel('Choose images').setInputFiles([
      { name: 'big.png', mimeType: 'image/png', buffer: big },
      { name: 'small.jpg', mimeType: 'image/jpeg', buffer: await makeJpeg(400, 300) },
    ]);
    await page.locator('#upload-form button[type=submit]').click({ force: true });
    // The bar moves while the parts go.
    await expect
      .poll(
        () =>
          row(page, 'big.png')
            .locator('progress')
            .evaluate((p) => (p as HTMLProgressElement).value),
        PATIENTLY,
      )
      .toBeGreaterThan(0);
    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(2);
    await expect
      .poll(() => page.locator('#upload-summary').textContent(), PATIENTLY)
      .toBe('2 of 2 uploaded. View in gallery');
    // Parts 1 and 3 once, part 2 twice (its connection dropped); the small photo as one form post.
    expect([...puts].sort()).toEqual([1, 2, 2, 3]);
    expect(posts).toHaveLength(1);
    expect(pendingOf('parts@example.com').filter((p) => p.imageId !== null)).toHaveLength(2);

    await row(page, 'big.png').getByRole('link', { name: 'Uploaded — view' }).click();
    await expect.poll(() => page.locator('h1').textContent(), PATIENTLY).toContain('big');
    expect(await page.locator('main').textContent()).toContain('17');
    await context.close();
  });

  it('gives an upload in parts up when Cancel is pressed: nothing is kept, the bucket drops its parts, on a desktop', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'cancel@example.com');
    // Part 3 is held on its way until the person has pressed Cancel.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let heldOne = false;
    await partPuts(page, async (n, _attempt, route) => {
      if (n !== 3) return false;
      heldOne = true;
      await held;
      await route.abort().catch(() => {});
      return true;
    });
    await page.goto(`${app.origin}/upload`);
    await page
      .getByLabel('Choose images')
      .setInputFiles([{ name: 'big.png', mimeType: 'image/png', buffer: big }]);
    await expect.poll(() => heldOne, PATIENTLY).toBe(true);
    await page.getByRole('button', { name: 'Cancel big.png' }).click();
    await expect.poll(() => row(page, 'big.png').getAttribute('class'), PATIENTLY).toBe('cancelled');
    release();
    const inParts = () => pendingOf('cancel@example.com').filter((p) => p.multipartId !== null);
    await expect.poll(() => inParts()[0]?.closedAt ?? null, PATIENTLY).not.toBeNull();
    expect(inParts()).toHaveLength(1);
    const [given] = inParts();
    expect(given?.imageId).toBeNull();
    // The bucket holds no part of it: the multipart upload was aborted.
    const creds = JSON.parse(readFileSync(path.join(app.dataDir, 'embedded-s3.json'), 'utf8'));
    const bucket = createStorage({
      endpoint: `${app.origin}/s3`,
      region: creds.region,
      bucket: creds.bucket,
      credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
      forcePathStyle: true,
    });
    // (The app closes the upload, then aborts it: the abort may come a moment after.)
    await expect
      .poll(() => bucket.listParts(given?.key ?? '', given?.multipartId ?? ''), PATIENTLY)
      .toBeNull();
    await page.goto(`${app.origin}/`);
    expect(await page.locator('#grid li.thumb').count()).toBe(0);
    await context.close();
  });

  it('without JavaScript sends the same large file as one form post', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, {
      viewport: { width: 390, height: 844 },
      javaScriptEnabled: false,
    });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'nojs@example.com');
    const puts = await partPuts(page);
    await page.goto(`${app.origin}/upload`);
    await page
      .getByLabel('Choose an image')
      .setInputFiles([{ name: 'big.png', mimeType: 'image/png', buffer: big }]);
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/images\/[0-9a-f]{32}$/);
    expect(puts).toEqual([]);
    expect(pendingOf('nojs@example.com').map((p) => p.multipartId)).toEqual([null]);
    expect(pendingOf('nojs@example.com')[0]?.imageId).toMatch(/^[0-9a-f]{32}$/);
    await context.close();
  });
});
