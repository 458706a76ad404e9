/// <reference lib="dom" />
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../support/app.js';
import {
  BROWSER_TEST_TIMEOUT_MS,
  docsScreenshot,
  launchBrowser,
  newContext,
  PATIENTLY,
  screenshotPath,
  signUpIn,
  skipBrowser,
  threePictures,
  untilThumbnails,
  uploadAndWaitForThumbnails,
} from '../support/browser.js';
import { startAppServer } from '../support/server.js';

const CASES = [
  { name: 'phone, JavaScript off', viewport: { width: 390, height: 844 }, javaScriptEnabled: false },
  { name: 'desktop, JavaScript on', viewport: { width: 1280, height: 800 }, javaScriptEnabled: true },
] as const;

/** How much wider than the window the page is: 0 when nothing overflows sideways. */
const overflow = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

/** Every image on the page has loaded its pixels. */
const allLoaded = (page: Page, selector: string) =>
  page
    .locator(selector)
    .evaluateAll((imgs) => imgs.every((img) => (img as HTMLImageElement).naturalWidth > 0));

describe.skipIf(skipBrowser)('albums in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const { name, viewport, javaScriptEnabled } of CASES) {
    it(`makes an album from a selection, opens it, shares it, and a stranger opens the share (${name})`, {
      timeout: BROWSER_TEST_TIMEOUT_MS,
    }, async () => {
      const app = await startAppServer({});
      try {
        // Uploading needs upload.js: the pictures go in with scripts on, the album is made as the case says.
        const uploader = await newContext(browser);
        const up = await uploader.newPage();
        await signUpIn(up, app.origin, 'owner@example.com');
        await uploadAndWaitForThumbnails(up, app.origin, await threePictures());
        await uploader.close();

        const owner = await newContext(browser, { viewport, javaScriptEnabled });
        const page = await owner.newPage();
        await page.goto(`${app.origin}/login`);
        await page.getByLabel('Email').fill('owner@example.com');
        await page.getByLabel('Password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Log in' }).click();
        await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
        await untilThumbnails(page, 3);

        await page.getByLabel('Select harbour').check();
        await page.getByLabel('Select lighthouse').check();
        await page.getByRole('button', { name: 'Add to album' }).click();
        await expect(page.getByRole('heading', { name: 'Add 2 images to an album' }).count()).resolves.toBe(
          1,
        );
        expect(await overflow(page)).toBe(0);
        await page.getByLabel('Album name').fill('Harbour days');
        await page.getByRole('button', { name: 'Make a new album with them' }).click();
        await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/albums\/[a-z0-9]+$/);
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Harbour days');
        expect(await page.locator('#grid li.thumb').count()).toBe(2);
        await expect.poll(() => allLoaded(page, '#grid img'), PATIENTLY).toBe(true);
        expect(await overflow(page)).toBe(0);
        if (javaScriptEnabled) await docsScreenshot(page, 'album');
        else await page.screenshot({ path: screenshotPath('album-phone-no-js') });

        // The albums list: its cover and count; then back into it by its name.
        await page.getByRole('link', { name: 'Albums' }).first().click();
        expect(await page.locator('.album-tile').textContent()).toContain('2 images');
        await expect.poll(() => allLoaded(page, 'img.album-cover'), PATIENTLY).toBe(true);
        expect(await overflow(page)).toBe(0);
        await page.screenshot({ path: screenshotPath(`albums-list-${viewport.width}`) });
        await page.getByRole('link', { name: 'Harbour days' }).click();

        await page.getByLabel('Link expires after').selectOption('1d');
        await page.getByLabel('Password (optional)').fill('harbour lights');
        await page.getByRole('button', { name: 'Create share link' }).click();
        const link = await page.getByRole('textbox', { name: 'New share link' }).inputValue();
        expect(link).toMatch(/\/s\/[a-z2-7]{32}$/);
        expect(await overflow(page)).toBe(0);
        await page.screenshot({ path: screenshotPath(`album-shared-${viewport.width}`), fullPage: true });

        const stranger = await newContext(browser, { viewport, javaScriptEnabled });
        const visitor = await stranger.newPage();
        await visitor.goto(link);
        await visitor.getByLabel('Password').fill('harbour lights');
        await visitor.getByRole('button', { name: 'Show the images' }).click();
        await expect
          .poll(() => visitor.getByRole('heading', { level: 1 }).textContent(), PATIENTLY)
          .toBe('Harbour days');
        expect(await visitor.locator('figure.display img').count()).toBe(2);
        await expect.poll(() => allLoaded(visitor, 'figure.display img'), PATIENTLY).toBe(true);
        expect(await overflow(visitor)).toBe(0);
        await visitor.screenshot({ path: screenshotPath(`album-share-stranger-${viewport.width}`) });
        await stranger.close();
        await owner.close();
      } finally {
        await app.close();
      }
    });
  }
});
