/// <reference lib="dom" />
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

/** ACCEPT=any as a person meets it: other files upload beside images and show as file cards. */
describe.skipIf(skipBrowser)('other files (ACCEPT=any) in a real browser', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;

  beforeAll(async () => {
    app = await startAppServer({ ACCEPT: 'any', SIGNUP: 'open' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('on a phone, uploads a PDF beside a photo: a file card the viewer passes by, a page with Download', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await signUpIn(page, app.origin, 'files@example.com');
    await page.goto(`${app.origin}/upload`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Upload files');
    await page.getByLabel('Choose files').setInputFiles([
      { name: 'Invoice 42.pdf', mimeType: 'application/pdf', buffer: PDF },
      { name: 'harbour.jpg', mimeType: 'image/jpeg', buffer: await makeJpeg(900, 600) },
    ]);
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(2);

    await page.goto(`${app.origin}/`);
    const fileCard = page.locator('#grid li.thumb', { hasText: 'Invoice 42' });
    await expect.poll(() => fileCard.locator('.file-type').textContent(), PATIENTLY).toBe('PDF');
    expect(await fileCard.locator('.file-size').textContent()).toMatch(/^\d+ B$/);
    await expect
      .poll(
        () =>
          page
            .locator('#grid img')
            .evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length),
        PATIENTLY,
      )
      .toBe(1);
    await page.screenshot({ path: screenshotPath('files-gallery-phone') });

    // The photo opens in the viewer; the file card leads to the file's page.
    await page.locator('#grid li.thumb', { hasText: 'harbour' }).locator('a.thumb-link').click();
    await expect
      .poll(
        () =>
          page.evaluate(
            () =>
              (window as unknown as { pswp?: { opener: { isOpen: boolean } } }).pswp?.opener.isOpen === true,
          ),
        PATIENTLY,
      )
      .toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('.pswp').count(), PATIENTLY).toBe(0);
    await fileCard.locator('a.thumb-link').click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/images\/[a-z0-9]+$/);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Invoice 42');
    expect(await page.getByRole('img', { name: /Invoice 42: PDF file/ }).count()).toBe(1);
    await page.screenshot({ path: screenshotPath('file-page-phone') });
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download', exact: true }).click();
    expect((await download).suggestedFilename()).toBe('Invoice 42.pdf');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('keeps a text file’s name through the plain form with JavaScript off', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, {
      javaScriptEnabled: false,
      viewport: { width: 1100, height: 800 },
    });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'nojs-files@example.com');
    await page.goto(`${app.origin}/upload`);
    await page.getByLabel('Choose a file').setInputFiles({
      name: 'packing list.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('socks\ntoothbrush\n'),
    });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect
      .poll(() => page.getByRole('heading', { level: 1 }).textContent(), PATIENTLY)
      .toBe('packing list');
    expect(await page.locator('.details dd').nth(1).textContent()).toBe('TXT file');
    await context.close();
  });
});
