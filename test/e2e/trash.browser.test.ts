import type { Browser, Page } from 'playwright-core';
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
  threePictures,
  uploadAndWaitForThumbnails,
} from '../support/browser.js';
import { startAppServer } from '../support/server.js';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

describe.skipIf(skipBrowser)('the trash in a real browser: delete, undo, restore, delete forever', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    browser = await launchBrowser();
  }, BROWSER_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  const cards = (page: Page) => page.locator('#grid > li.thumb:not(.thumb-trashed)');
  const card = (page: Page, title: string) => cards(page).filter({ hasText: title });

  it('deletes a card in place with Undo on it, then restores and deletes forever from the Trash page', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: DESKTOP });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signUpIn(page, app.origin, 'desk@example.com');
    await uploadAndWaitForThumbnails(page, app.origin, await threePictures());

    // Delete on a card: no question, the card says where it went and offers Undo in its place.
    await card(page, 'lighthouse')
      .getByRole('link', { name: /^Delete/ })
      .click();
    await expect
      .poll(() => page.locator('.thumb-trashed').textContent(), PATIENTLY)
      .toContain('“lighthouse” is in the trash.');
    expect(await cards(page).count()).toBe(2);
    await page.locator('.thumb-trashed').getByRole('button', { name: /^Undo/ }).click();
    await expect.poll(() => cards(page).count(), PATIENTLY).toBe(3);
    expect(await card(page, 'lighthouse').locator('img').count()).toBe(1);

    // Deleted again, it waits in the Trash, with the days it has left.
    await card(page, 'harbour')
      .getByRole('link', { name: /^Delete/ })
      .click();
    await expect.poll(() => page.locator('.thumb-trashed').count(), PATIENTLY).toBe(1);
    await page.reload();
    expect(await cards(page).count()).toBe(2);
    await page.getByRole('link', { name: 'Trash' }).click();
    await expect.poll(() => page.locator('h1').textContent(), PATIENTLY).toBe('Trash');
    const item = page.locator('.trash-grid > li').filter({ hasText: 'harbour' });
    expect(await item.locator('.thumb-note').textContent()).toBe('30 days left');
    await page.screenshot({ path: screenshotPath('trash-desktop') });

    // Restore: back in the gallery.
    await item.getByRole('button', { name: /^Restore/ }).click();
    await expect
      .poll(() => page.getByRole('status').first().textContent(), PATIENTLY)
      .toBe('Restored 1 image.');
    expect(await page.locator('.trash-grid > li').count()).toBe(0);
    await page.goto(`${app.origin}/`);
    expect(await cards(page).count()).toBe(3);

    // Delete forever asks once more, then it is gone for good.
    await card(page, 'market')
      .getByRole('link', { name: /^Delete/ })
      .click();
    await expect.poll(() => page.locator('.thumb-trashed').count(), PATIENTLY).toBe(1);
    await page.goto(`${app.origin}/trash`);
    await page.getByRole('button', { name: /^Delete forever/ }).click();
    await expect.poll(() => page.locator('h1').textContent(), PATIENTLY).toBe('Delete “market” forever?');
    await page.getByRole('button', { name: 'Delete forever' }).click();
    await expect
      .poll(() => page.getByRole('status').first().textContent(), PATIENTLY)
      .toBe('Deleted 1 image for good.');
    expect(await page.locator('.empty h2').textContent()).toBe('The trash is empty');
    expect(errors).toEqual([]);
    await context.close();
  });

  it('after logging out in another tab, Delete on a card opens the whole login page and comes back', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: DESKTOP });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'two-tabs@example.com');
    await uploadAndWaitForThumbnails(page, app.origin, (await threePictures()).slice(0, 1));
    const other = await context.newPage();
    await other.goto(`${app.origin}/`);
    await other.getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => other.getByText('You have been logged out.').isVisible(), PATIENTLY).toBe(true);

    // htmx asks for the card's new state; the answer sends the whole tab to the login page, not
    // into the card's square.
    await cards(page)
      .first()
      .getByRole('link', { name: /^Delete/ })
      .click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/login');
    await expect.poll(() => page.getByRole('heading', { name: 'Log in' }).isVisible(), PATIENTLY).toBe(true);
    expect(await page.locator('header').count()).toBe(1);
    expect(await page.locator('#grid').count()).toBe(0);
    await page.screenshot({ path: screenshotPath('session-ended-login') });
    await page.getByLabel('Email').fill('two-tabs@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
    expect(await cards(page).count()).toBe(1); // the Delete pressed while logged out changed nothing
    await context.close();
  });

  it('on a phone with JavaScript, a deleted card keeps its Undo inside its square', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: PHONE, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'tap@example.com');
    await uploadAndWaitForThumbnails(page, app.origin, await threePictures());
    await card(page, 'lighthouse')
      .getByRole('link', { name: /^Delete/ })
      .tap();
    const undo = page.locator('.thumb-trashed').getByRole('button', { name: /^Undo/ });
    await expect.poll(() => undo.isVisible(), PATIENTLY).toBe(true);
    const square = await page.locator('.thumb-trashed').boundingBox();
    const button = await undo.boundingBox();
    expect(square && button && button.y + button.height <= square.y + square.height + 0.5).toBe(true);
    await page.screenshot({ path: screenshotPath('trash-undo-phone') });
    await undo.tap();
    await expect.poll(() => cards(page).count(), PATIENTLY).toBe(3);
    await context.close();
  });

  it('without JavaScript on a phone: delete from the image page, its page says it is in the trash, restore', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const setup = await newContext(browser, { viewport: DESKTOP });
    const setupPage = await setup.newPage();
    await signUpIn(setupPage, app.origin, 'phone@example.com');
    await uploadAndWaitForThumbnails(setupPage, app.origin, (await threePictures()).slice(0, 1));
    const storageState = await setup.storageState();
    await setup.close();

    const context = await newContext(browser, { viewport: PHONE, javaScriptEnabled: false, storageState });
    const page = await context.newPage();
    await page.goto(`${app.origin}/`);
    await cards(page).first().locator('a.thumb-link').click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/images\//);
    const imagePath = new URL(page.url()).pathname;
    await page.getByRole('link', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Move to trash' }).click();
    await expect
      .poll(() => page.locator('.notice.undo p').textContent(), PATIENTLY)
      .toBe('Moved 1 image to the trash.');
    expect(await cards(page).count()).toBe(0);
    // The Trash page on a phone: the card, its time left and both buttons, no wider than the screen.
    await page.goto(`${app.origin}/trash`);
    expect(await page.locator('.trash-grid > li').count()).toBe(1);
    expect(
      await page
        .getByRole('button', { name: /^Restore/ })
        .first()
        .isVisible(),
    ).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(PHONE.width);
    await page.screenshot({ path: screenshotPath('trash-phone-nojs') });

    // Its page still opens for its owner, and says so, with Restore.
    await page.goto(`${app.origin}${imagePath}`);
    expect(await page.locator('#trash-heading').textContent()).toBe('This image is in the trash');
    expect(await page.getByRole('button', { name: 'Rename' }).count()).toBe(0);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(PHONE.width);
    await page.screenshot({ path: screenshotPath('trash-image-phone-nojs') });
    await page.getByRole('button', { name: 'Restore' }).click();
    await expect
      .poll(() => page.getByRole('status').first().textContent(), PATIENTLY)
      .toBe('Restored from the trash.');
    await page.goto(`${app.origin}/`);
    expect(await cards(page).count()).toBe(1);
    await context.close();
  });
});
