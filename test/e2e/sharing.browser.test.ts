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
  skipBrowser,
} from '../support/browser.js';
import { makeJpeg } from '../support/images.js';
import { startAppServer } from '../support/server.js';

describe.skipIf(skipBrowser)('sharing and the admin console in a real browser', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;

  beforeAll(async () => {
    app = await startAppServer({});
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('shares an image by a password link, a stranger opens it, the owner revokes it, and the admin sees it all', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const owner = await newContext(browser, {
      viewport: { width: 1100, height: 900 },
      permissions: ['clipboard-read', 'clipboard-write'],
    });
    const page = await owner.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    await page.goto(`${app.origin}/signup`);
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
    await page.goto(`${app.origin}/upload`);
    await page.getByLabel('Choose images').setInputFiles({
      name: 'harbour.jpg',
      mimeType: 'image/jpeg',
      buffer: await makeJpeg(900, 600),
    });
    // upload.js starts as soon as a file is chosen.
    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(1);
    await page.goto(`${app.origin}/`);
    // To the image's own page (a click on a ready picture opens the viewer instead).
    const href = await page.locator('#grid a.thumb-link').first().getAttribute('href');
    await page.goto(`${app.origin}${href}`);
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/images\/[a-z0-9]+$/);
    const imagePath = new URL(page.url()).pathname;

    await page.getByLabel('Link expires after').selectOption('1d');
    await page.getByLabel('Password (optional)').fill('harbour lights');
    // Downloads: a full-size copy without location (the original is the third choice).
    await page.getByLabel('A full-size copy, without location or camera data').check();
    await page.getByRole('button', { name: 'Create share link' }).click();
    const field = page.getByRole('textbox', { name: 'New share link' });
    const link = await field.inputValue();
    expect(link).toMatch(/\/s\/[a-z2-7]{32}$/);
    // The page it lands on (after a redirect) shows the link at the top, in view, with Copy.
    expect(new URL(page.url()).pathname).toBe(imagePath);
    const box = await field.boundingBox();
    expect(box && box.y + box.height).toBeLessThan(900);
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), PATIENTLY).toBe(link);
    await expect.poll(() => page.getByRole('button', { name: 'Copied' }).isVisible(), PATIENTLY).toBe(true);
    await page.screenshot({ path: screenshotPath('image-page-share-link'), fullPage: true });
    // A reload neither shows it again nor makes a second link.
    await page.reload();
    expect(await page.getByRole('textbox', { name: 'New share link' }).count()).toBe(0);
    expect(await page.locator('.sharing tbody tr').count()).toBe(1);

    const stranger = await newContext(browser, { viewport: { width: 1000, height: 800 } });
    const visitor = await stranger.newPage();
    const response = await visitor.goto(link);
    expect(response?.headers()['referrer-policy']).toBe('no-referrer');
    await visitor.getByLabel('Password').fill('harbour lights');
    await visitor.getByRole('button', { name: 'Show the images' }).click();
    await expect
      .poll(
        () => visitor.locator('figure.display img').evaluate((img: HTMLImageElement) => img.naturalWidth),
        PATIENTLY,
      )
      .toBe(900);
    expect(await visitor.getByRole('link', { name: /Download original/ }).count()).toBe(0);
    const [download] = await Promise.all([
      visitor.waitForEvent('download'),
      visitor.getByRole('link', { name: /^Download/ }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/\.jpg$/);
    expect(await download.failure()).toBeNull();
    await visitor.screenshot({ path: screenshotPath('public-share-page'), fullPage: true });

    await page.goto(`${app.origin}${imagePath}`);
    await expect.poll(() => page.locator('.sharing tbody td').nth(2).textContent(), PATIENTLY).toBe('1'); // one view
    await page.getByRole('button', { name: 'Revoke' }).click();
    await expect
      .poll(() => page.getByRole('status').first().textContent(), PATIENTLY)
      .toContain('Link revoked.');
    const gone = await visitor.goto(link);
    expect(gone?.status()).toBe(410);
    expect(await visitor.locator('h1').textContent()).toBe('This link no longer works');

    await page.goto(`${app.origin}/admin`);
    expect(await page.locator('table').textContent()).toContain('owner@example.com');
    await page.screenshot({ path: screenshotPath('admin-users') });
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Action').selectOption('share_revoke');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('action'), PATIENTLY).toBe('share_revoke');
    await expect.poll(() => page.locator('table.audit tbody tr').count(), PATIENTLY).toBe(1);
    await page.screenshot({ path: screenshotPath('admin-audit') });
    expect(cspErrors).toEqual([]);
    await stranger.close();
    await owner.close();
  });
});
