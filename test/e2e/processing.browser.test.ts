/// <reference lib="dom" />
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../support/app.js';
import {
  BROWSER_TEST_TIMEOUT_MS,
  launchBrowser,
  newContext,
  PATIENTLY,
  screenshotPath,
  signUpIn,
  skipBrowser,
} from '../support/browser.js';
import { makeJpeg } from '../support/images.js';
import { startAppServer } from '../support/server.js';
import { startTestStore } from '../support/store.js';
import { keyOf, startStoreInterceptor } from '../support/store-interceptor.js';

/** A door requests wait at until it is opened. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe.skipIf(skipBrowser)('background processing in a real browser', () => {
  let store: Awaited<ReturnType<typeof startTestStore>>;
  let proxy: Awaited<ReturnType<typeof startStoreInterceptor>>;
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;
  /** Held while set: the workers' reads of originals, and the browser's of thumbnails. */
  const held: { originals?: ReturnType<typeof gate>; thumbs?: ReturnType<typeof gate> } = {};

  beforeAll(async () => {
    store = await startTestStore();
    proxy = await startStoreInterceptor();
    proxy.forwardTo(store.origin);
    proxy.onRequest((req) => {
      if (req.method !== 'GET') return undefined;
      const key = keyOf(req, store.bucket);
      // The worker reads an original whole; completion only reads its first bytes (a range).
      if (held.originals && key.includes('/originals/') && req.headers.range === undefined)
        return { hold: held.originals.opened };
      if (held.thumbs && key.includes('/thumbs/')) return { hold: held.thumbs.opened };
      return undefined;
    });
    app = await startAppServer({
      SIGNUP: 'open',
      S3_ENDPOINT: proxy.endpoint,
      S3_BUCKET: store.bucket,
      S3_REGION: store.region,
      S3_ACCESS_KEY_ID: store.credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: store.credentials.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    held.originals?.open();
    held.thumbs?.open();
    await browser?.close();
    await app?.close();
    await proxy?.close();
    await store?.close();
  });

  it('on a phone, shows "Processing…" in the grid, swaps in the thumbnail by itself, painted by its ThumbHash until it loads', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    // Uploaded from a desktop without JavaScript (a plain form post: the bucket here is another
    // origin, which the upload script's requests could not reach without CORS), seen on a phone.
    const desktop = await newContext(browser, { javaScriptEnabled: false });
    const uploader = await desktop.newPage();
    await signUpIn(uploader, app.origin, 'phone@example.com');
    held.originals = gate();
    await uploader.goto(`${app.origin}/upload`);
    await uploader.getByLabel('Choose an image').setInputFiles({
      name: 'harbour.jpg',
      mimeType: 'image/jpeg',
      buffer: await makeJpeg(1200, 900),
    });
    await uploader.getByRole('button', { name: 'Upload' }).click();
    // The upload is done as soon as the file is stored: processing does not hold it up.
    await expect.poll(() => new URL(uploader.url()).pathname, PATIENTLY).toMatch(/^\/images\/[a-z0-9]+$/);
    await desktop.close();

    const context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(`${app.origin}/login`);
    await page.getByLabel('Email').fill('phone@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
    await page.goto(`${app.origin}/`);
    const card = page.locator('#grid li.thumb').first();
    await expect.poll(() => card.locator('.pending').textContent(), PATIENTLY).toBe('Processing…');
    expect(await card.locator('img').count()).toBe(0);
    await page.screenshot({ path: screenshotPath('processing-phone') });

    // The worker goes on; the thumbnail's own bytes wait, so what shows meanwhile is the placeholder.
    held.thumbs = gate();
    held.originals.open();
    await expect.poll(() => card.locator('img').count(), PATIENTLY).toBe(1);
    const img = card.locator('img');
    await expect
      .poll(() => img.evaluate((el) => getComputedStyle(el).backgroundImage), PATIENTLY)
      .toMatch(/^url\("data:image\/png;base64,/);
    await page.screenshot({ path: screenshotPath('thumbhash-phone') });
    held.thumbs.open();
    await expect
      .poll(
        () =>
          img.evaluate(async (el: HTMLImageElement) => {
            // With the grid's srcset, naturalWidth is in CSS pixels: measure the file the browser chose.
            if (!el.complete || !el.currentSrc) return 0;
            const file = new Image();
            file.src = el.currentSrc;
            await file.decode();
            return file.naturalWidth;
          }),
        PATIENTLY,
      )
      .toBe(400);
    await expect
      .poll(() => img.evaluate((el) => getComputedStyle(el).backgroundImage), PATIENTLY)
      .toBe('none');
    expect(cspErrors).toEqual([]);
    await context.close();
  });

  it('without JavaScript, the new image’s page says it is being made and reloads until it shows', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, {
      javaScriptEnabled: false,
      viewport: { width: 1100, height: 800 },
    });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'nojs@example.com');
    held.originals = gate();
    await page.goto(`${app.origin}/upload`);
    await page.getByLabel('Choose an image').setInputFiles({
      name: 'field.jpg',
      mimeType: 'image/jpeg',
      buffer: await makeJpeg(1000, 700),
    });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/images\/[a-z0-9]+$/);
    await expect
      .poll(() => page.locator('figure.display').textContent(), PATIENTLY)
      .toContain('The thumbnail and display copy are being made');
    expect(await page.locator('figure.display img').count()).toBe(0);
    held.originals.open();
    await expect
      .poll(
        () => page.locator('figure.display img').evaluate((el: HTMLImageElement) => el.naturalWidth),
        PATIENTLY,
      )
      .toBe(1000);
    await context.close();
  });
});
