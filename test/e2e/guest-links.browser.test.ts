/// <reference lib="dom" />

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BROWSER_TEST_TIMEOUT_MS,
  docsScreenshot,
  launchBrowser,
  newContext,
  PATIENTLY,
  signUpIn,
  skipBrowser,
} from '../support/browser.js';
import { makeJpeg } from '../support/images.js';
import { startAppServer } from '../support/server.js';

/**
 * A guest upload link as people use it: the owner makes one on a desktop and copies it; a guest
 * without an account opens it on a phone with JavaScript off, chooses a photo and presses Upload;
 * the owner finds it in the gallery, then turns the link off, and the guest's page says so.
 */
describe.skipIf(skipBrowser)('guest upload links in a real browser', () => {
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

  it('takes a photo from a guest on a phone without JavaScript into the owner’s gallery', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const desk = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const ownerPage = await desk.newPage();
    await signUpIn(ownerPage, app.origin, 'host@example.com');
    await ownerPage.getByRole('link', { name: 'Links' }).click();
    await ownerPage.getByRole('link', { name: 'guest upload link' }).click();
    await ownerPage.getByLabel('Label').fill('Garden party');
    await ownerPage.getByLabel('Message to guests').fill('Thanks for coming! Add your photos here.');
    await ownerPage.getByLabel('Files it takes in all').fill('5');
    await ownerPage.getByRole('button', { name: 'Make upload link' }).click();
    const address = await ownerPage.locator('#new-share-link').inputValue();
    expect(address).toMatch(/\/u\/[a-z2-7]{32}$/);

    const phone = await newContext(browser, {
      viewport: { width: 390, height: 844 },
      isMobile: true,
      javaScriptEnabled: false,
    });
    const guest = await phone.newPage();
    await guest.goto(address);
    expect(await guest.locator('h1').textContent()).toBe('Garden party');
    expect(await guest.locator('main').textContent()).toContain('Add your photos here.');
    expect(await guest.locator('main').textContent()).toContain('Up to 5 more files');
    // Nothing on the page leads into the app, and nothing overflows sideways.
    expect(await guest.locator('a[href="/"]').count()).toBe(0);
    expect(await guest.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await guest.getByLabel('Choose an image').setInputFiles({
      name: 'cake.jpg',
      mimeType: 'image/jpeg',
      buffer: await makeJpeg(800, 600),
    });
    await guest.getByRole('button', { name: 'Upload' }).click();
    await expect
      .poll(() => guest.locator('main').textContent(), PATIENTLY)
      .toContain('your file was received');
    expect(await guest.locator('main').textContent()).toContain('Up to 4 more files');
    await expect
      .poll(async () => {
        await guest.reload();
        return guest.locator('.guest-sent img').count();
      }, PATIENTLY)
      .toBe(1);
    await docsScreenshot(guest, 'guest-upload-phone');

    // The owner finds it in the gallery, and the link's row counts it.
    await ownerPage.goto(`${app.origin}/`);
    await expect.poll(() => ownerPage.locator('#grid li.thumb').count(), PATIENTLY).toBe(1);
    // Without JavaScript the form's key names no file: the image is named for the link.
    expect(await ownerPage.locator('#grid').textContent()).toContain('Garden party');
    await ownerPage.goto(`${app.origin}/guest-links`);
    expect(await ownerPage.locator('table').textContent()).toContain('1 of 5 files');
    await ownerPage.getByRole('button', { name: /Turn off/ }).click();
    await expect.poll(() => ownerPage.locator('table').textContent(), PATIENTLY).toContain('turned off');

    // The guest's next visit is told the link is off, with no form.
    const off = await guest.goto(address);
    expect(off?.status()).toBe(410);
    expect(await guest.locator('main').textContent()).toContain('turned off');
    expect(await guest.locator('#upload-form').count()).toBe(0);

    // The owner turns it on again; the same address takes the guest's next photo.
    await ownerPage.getByRole('button', { name: /Turn on again/ }).click();
    await expect
      .poll(() => ownerPage.locator('main').textContent(), PATIENTLY)
      .toContain('Link turned on again');
    expect(await ownerPage.locator('table').textContent()).toContain('in use');
    const on = await guest.goto(address);
    expect(on?.status()).toBe(200);
    expect(await guest.locator('main').textContent()).toContain('Up to 4 more files');
    await desk.close();
    await phone.close();
  });

  it('takes several photos at once with JavaScript, with progress, and shows the guest what they sent', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const desk = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const ownerPage = await desk.newPage();
    await signUpIn(ownerPage, app.origin, 'party@example.com');
    await ownerPage.goto(`${app.origin}/guest-links`);
    await ownerPage.getByLabel('Label').fill('Class trip');
    await ownerPage.getByRole('button', { name: 'Make upload link' }).click();
    const address = await ownerPage.locator('#new-share-link').inputValue();

    const stranger = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
    const guest = await stranger.newPage();
    const errors: string[] = [];
    guest.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await guest.goto(address);
    await guest.getByLabel('Choose images').setInputFiles(
      await Promise.all(
        ['bus.jpg', 'museum.jpg', 'lunch.jpg'].map(async (name, i) => ({
          name,
          mimeType: 'image/jpeg',
          buffer: await makeJpeg(500 + i * 30, 400),
        })),
      ),
    );
    expect(await guest.locator('#upload-list li progress').count()).toBe(3);
    await guest.locator('#upload-form button[type=submit]').click({ force: true });
    await expect
      .poll(() => guest.locator('#upload-summary').textContent(), PATIENTLY)
      .toBe('3 of 3 uploaded. See what you sent');
    await guest.getByRole('link', { name: 'See what you sent' }).click();
    await expect.poll(() => guest.locator('.guest-sent li').count(), PATIENTLY).toBe(3);
    expect(await guest.locator('main').textContent()).toContain('Up to 97 more files');
    expect(errors).toEqual([]);
    // In the owner's gallery, all three; nothing else of the owner's shows on the guest's page.
    await ownerPage.goto(`${app.origin}/`);
    await expect.poll(() => ownerPage.locator('#grid li.thumb').count(), PATIENTLY).toBe(3);
    // With the script, each file keeps its own name.
    expect(await ownerPage.locator('#grid').textContent()).toContain('museum');
    expect(await guest.locator('a[href^="/images/"]').count()).toBe(0);
    await desk.close();
    await stranger.close();
  });
});
