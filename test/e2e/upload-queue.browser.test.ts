/// <reference lib="dom" />

import path from 'node:path';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connection.js';
import {
  BROWSER_TEST_TIMEOUT_MS,
  docsScreenshot,
  launchBrowser,
  newContext,
  PATIENTLY,
  screenshotPath,
  signUpIn,
  skipBrowser,
} from '../support/browser.js';
import { makeJpeg } from '../support/images.js';
import { startAppServer } from '../support/server.js';

/**
 * The upload page with JavaScript, as a person uses it: choose several files, then press Upload
 * (issue 17: every file used to be sent twice, once on choosing and again on the button), cancel
 * one, retry one that failed, read the summary, go to the gallery.
 */
describe.skipIf(skipBrowser)('the upload queue in a real browser', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  const rows = (page: Page) => page.locator('#upload-list li');
  const row = (page: Page, name: string) => rows(page).filter({ hasText: name });
  const summary = (page: Page) => page.locator('#upload-summary');

  /** Posts of files to the bucket, by the file name in their form data. */
  function bucketPosts(page: Page) {
    const seen: string[] = [];
    const handlers = new Map<string, (route: Route) => Promise<void>>();
    const fileNameOf = (route: Route) =>
      /filename="([^"]+)"/.exec(route.request().postDataBuffer()?.toString('latin1') ?? '')?.[1] ?? '';
    return {
      seen,
      /** The next post of `name` goes to `handler` instead of the bucket. */
      once(name: string, handler: (route: Route) => Promise<void>) {
        handlers.set(name, handler);
      },
      async start() {
        await page.route(
          (url) => url.pathname.startsWith('/s3/'),
          async (route) => {
            if (route.request().method() !== 'POST') return route.continue();
            const name = fileNameOf(route);
            seen.push(name);
            const handler = handlers.get(name);
            handlers.delete(name);
            if (handler) return handler(route);
            return route.continue();
          },
        );
      },
    };
  }

  it('queues chosen files at once, sends each once when Upload is pressed too, and cancels, retries and sums up, on a phone', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
    });
    await signUpIn(page, app.origin, 'queue@example.com');
    const posts = bucketPosts(page);
    await posts.start();
    // c.jpg is held on its way to the bucket until it is cancelled; d.jpg's first try fails.
    let releaseHeld = () => {};
    const held = new Promise<void>((resolve) => {
      releaseHeld = resolve;
    });
    posts.once('c.jpg', async (route) => {
      await held;
      await route.abort().catch(() => {}); // cancelled by then
    });
    posts.once('d.jpg', (route) => route.abort('connectionreset'));

    await page.goto(`${app.origin}/upload`);
    const names = ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'];
    const files = await Promise.all(
      names.map(async (name, i) => ({
        name,
        mimeType: 'image/jpeg',
        buffer: await makeJpeg(600 + i * 40, 400),
      })),
    );
    // Plural once the script has taken the form over (without it the form takes one file).
    await page.getByLabel('Choose images').setInputFiles(files);
    // Every chosen file has its row at once, with a preview of the picture.
    expect(await rows(page).count()).toBe(4);
    // …and the person presses Upload, as the page invites: it is disabled while files are on their way.
    const upload = page.locator('#upload-form button[type=submit]');
    expect(await upload.isDisabled()).toBe(true);
    expect(await upload.textContent()).toBe('Uploading…');
    await upload.click({ force: true });
    await expect
      .poll(
        () =>
          page
            .locator('#upload-list img.upload-preview')
            .evaluateAll((imgs) => imgs.filter((img) => (img as HTMLImageElement).naturalWidth > 0).length),
        PATIENTLY,
      )
      .toBe(4);

    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(2);
    await expect.poll(() => row(page, 'd.jpg').getAttribute('class'), PATIENTLY).toBe('failed');
    expect(await row(page, 'd.jpg').locator('.upload-status').textContent()).toBe(
      'Network error while uploading.',
    );
    // c.jpg is still on its way: cancel it.
    expect(await row(page, 'c.jpg').getAttribute('class')).toBe('sending');
    await page.getByRole('button', { name: 'Cancel c.jpg' }).click();
    await expect.poll(() => row(page, 'c.jpg').getAttribute('class'), PATIENTLY).toBe('cancelled');
    releaseHeld();
    await expect
      .poll(() => summary(page).textContent(), PATIENTLY)
      .toBe('2 of 3 uploaded, 1 failed: d.jpg, 1 cancelled. View in gallery');
    expect(await summary(page).getAttribute('role')).toBe('status');
    await docsScreenshot(page, 'upload-queue-phone');

    // Retry sends d.jpg again, with a fresh policy.
    await page.getByRole('button', { name: 'Retry d.jpg' }).click();
    await expect.poll(() => row(page, 'd.jpg').getAttribute('class'), PATIENTLY).toBe('ok');
    await expect
      .poll(() => summary(page).textContent(), PATIENTLY)
      .toBe('3 of 3 uploaded, 1 cancelled. View in gallery');

    // The button now says what it does, and only opens the file chooser: nothing more is sent.
    expect(await upload.textContent()).toBe('Upload more');
    const chooser = page.waitForEvent('filechooser', { timeout: 5000 });
    await page.getByRole('button', { name: 'Upload more', exact: true }).click();
    await chooser;
    // a and b went once each, c was cancelled on its way, d went twice (failed, then retried).
    expect([...posts.seen].sort()).toEqual(['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'd.jpg']);
    // c's policy and d's first were given up, so they hold no room in the quota: no upload is left open.
    const db = openDatabase(path.join(app.dataDir, 'gallery.db'));
    try {
      await expect
        .poll(
          () =>
            (
              db
                .prepare(
                  `SELECT count(*) AS n FROM pending_uploads p JOIN users u ON u.id = p.owner_id
                   WHERE u.email = 'queue@example.com' AND p.closed_at IS NULL`,
                )
                .get() as { n: number }
            ).n,
          PATIENTLY,
        )
        .toBe(0);
    } finally {
      db.close();
    }

    await page.getByRole('link', { name: 'View in gallery' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
    await expect.poll(() => page.locator('#grid li.thumb').count(), PATIENTLY).toBe(3);
    const titles = await page.locator('#grid li.thumb .thumb-title').allTextContents();
    expect(titles.map((t) => t.replace('Select ', '').trim()).sort()).toEqual(['a', 'b', 'd']);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('with a failing first file still sends the rest, says which failed, and retries a lost answer without sending twice, on a desktop', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'desk@example.com');
    const posts = bucketPosts(page);
    await posts.start();
    // The first completion reaches the app, but its answer is lost on the way back.
    let lostAnswers = 1;
    await page.route(
      (url) => url.pathname === '/uploads/complete',
      async (route) => {
        if (lostAnswers-- <= 0) return route.continue();
        await route.fetch();
        await route.abort('connectionreset');
      },
    );
    await page.goto(`${app.origin}/upload`);
    const good = await makeJpeg(500, 500);
    await page.getByLabel('Choose images').setInputFiles([
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') },
      { name: 'empty.png', mimeType: 'image/png', buffer: Buffer.alloc(0) },
      { name: 'one.jpg', mimeType: 'image/jpeg', buffer: good },
      { name: 'two.jpg', mimeType: 'image/jpeg', buffer: good },
    ]);
    await expect.poll(() => page.locator('#upload-list li.failed').count(), PATIENTLY).toBe(3);
    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(1);
    const lost = (await row(page, 'one.jpg').getAttribute('class')) === 'failed' ? 'one.jpg' : 'two.jpg';
    expect(await summary(page).textContent()).toBe(
      `1 of 4 uploaded, 3 failed: notes.txt, empty.png, ${lost}. View in gallery`,
    );
    // Retry completes the file the bucket already has: it is not sent again, and makes no second image.
    await page.getByRole('button', { name: `Retry ${lost}` }).click();
    await expect
      .poll(() => summary(page).textContent(), PATIENTLY)
      .toBe('2 of 4 uploaded, 2 failed: notes.txt, empty.png. View in gallery');
    expect(posts.seen.sort()).toEqual(['one.jpg', 'two.jpg']);

    // Refused before sending: nothing to retry, the reason says what to do.
    expect(await row(page, 'notes.txt').locator('button').isHidden()).toBe(true);
    expect(await row(page, 'empty.png').locator('.upload-status').textContent()).toBe('The file is empty.');
    // A file without a preview shows its extension instead.
    expect(await row(page, 'notes.txt').locator('.upload-preview').textContent()).toBe('TXT');
    expect(await row(page, 'empty.png').locator('.upload-preview').textContent()).toBe('PNG');
    await page.screenshot({ path: screenshotPath('upload-queue-desktop') });
    await page.goto(`${app.origin}/`);
    await expect.poll(() => page.locator('#grid li.thumb').count(), PATIENTLY).toBe(2);
    await context.close();
  });
});
