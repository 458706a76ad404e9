/// <reference lib="dom" />
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connection.js';
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

const DAY = 24 * 60 * 60 * 1000;

describe.skipIf(skipBrowser)('the timeline in a real browser: paging that keeps its place, search', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    origin = app.origin;
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /**
   * One real upload (JavaScript off, the plain form), then `n` more rows straight into the database
   * that show its thumbnail: a gallery of many pages without making many files. Each seeded image
   * is taken a day before the last, so the timeline has day and month headings.
   */
  async function galleryOf(page: Page, email: string, n: number) {
    await signUpIn(page, origin, email);
    await page.goto(`${origin}/upload`);
    // With JavaScript, choosing the file sends it (the button then offers "Upload more", which only
    // opens the file chooser); without, the Upload button does.
    await page.getByLabel(/^Choose (an image|images)$/).setInputFiles({
      name: 'Holiday beach.jpg',
      mimeType: 'image/jpeg',
      buffer: await makeJpeg(800, 600),
    });
    await page.getByRole('button', { name: /^Upload( more)?$/ }).click();
    const db = openDatabase(path.join(app.dataDir, 'gallery.db'));
    try {
      const ready = () =>
        db
          .prepare(
            "SELECT i.* FROM images i JOIN users u ON u.id = i.owner_id WHERE u.email = ? AND i.state = 'ready'",
          )
          .get(email) as Record<string, unknown> | undefined;
      await expect.poll(() => ready() !== undefined, PATIENTLY).toBe(true);
      const real = ready() as Record<string, unknown>;
      const insert = db.prepare(
        `INSERT INTO images (id, owner_id, title, original_name, original_key, display_key, thumb_key,
           content_type, bytes, width, height, taken_at, created_at, updated_at, state, placeholder)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ready', ?)`,
      );
      const start = Date.UTC(2024, 4, 31, 12, 0);
      for (let i = 0; i < n; i++) {
        const at = Number(real.created_at) - (i + 1) * 1000;
        insert.run(
          `${email.split('@')[0]}${String(i).padStart(4, '0')}`,
          real.owner_id,
          `Seeded ${i}`,
          `seed-${i}.jpg`,
          `${real.original_key}-copy-${i}`,
          real.display_key,
          real.thumb_key,
          real.content_type,
          real.bytes,
          real.width,
          real.height,
          start - Math.floor(i / 4) * DAY,
          at,
          at,
          real.placeholder,
        );
      }
    } finally {
      db.close();
    }
  }

  const cards = (page: Page) => page.locator('#grid > li.thumb');

  it('loads the next page as its end comes into view, moves focus to the first new card, and Back returns to the same place', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
    });
    // Enough pages that a "Load more" link is still there after any one page more came in by
    // scrolling (focusing the last card scrolls the link into view).
    await galleryOf(page, 'scroll@example.com', 250);
    await page.goto(`${origin}/`);
    await page.getByRole('link', { name: 'Date taken' }).click();
    await expect.poll(() => new URL(page.url()).search, PATIENTLY).toBe('?order=taken');
    // The address changes once the page starts arriving: its cards may still be coming in.
    await expect.poll(() => cards(page).count(), PATIENTLY).toBe(60);
    expect(await page.locator('#grid > li.grid-month h2').first().textContent()).toBe('June 2024');

    // Scrolling to the end of the grid loads the next page; the address records how far it got.
    await page.mouse.wheel(0, 100_000);
    await expect.poll(() => cards(page).count(), PATIENTLY).toBeGreaterThanOrEqual(120);
    await expect
      .poll(() => new URL(page.url()).searchParams.get('upto'), PATIENTLY)
      .toMatch(/^t\d+\.[a-z0-9]+$/);

    // From the keyboard: Tab from the last card onto "Load more" and press it (or let it load as it
    // scrolls into view): focus lands on the first card of the new page, not the top of the page.
    const before = await cards(page).count();
    await cards(page).last().locator('a').last().focus();
    await page.keyboard.press('Tab');
    // Enter on the link itself: had the next page already come in as the end scrolled into view,
    // focus would be on its first card, and Enter would open the viewer there.
    await page
      .getByRole('link', { name: 'Load more' })
      .press('Enter', { timeout: 1000 })
      .catch(() => {});
    await expect.poll(() => cards(page).count(), PATIENTLY).toBeGreaterThan(before);
    // The page that loads may be the one after `before` or, when scrolling the last card into view
    // already loaded that one, the next: either way focus is on the first card of a new page.
    const focusedAt = () =>
      page.evaluate(() => {
        const card = document.activeElement?.closest('#grid > li.thumb');
        return card ? Array.from(document.querySelectorAll('#grid > li.thumb')).indexOf(card) : -1;
      });
    await expect.poll(focusedAt, PATIENTLY).toBeGreaterThanOrEqual(before);
    expect((await focusedAt()) % 60).toBe(0);
    await page.screenshot({ path: screenshotPath('timeline-paged-desktop') });

    // Open a card of the last page loaded in the viewer, then Back: the viewer closes on the same
    // gallery (not reloaded: this mark on the page is still there), the card in view.
    const total = await cards(page).count();
    const target = cards(page).nth(total - 3);
    const targetId = (await target.getAttribute('id')) as string;
    const imageId = targetId.replace(/^image-/, '');
    await target.scrollIntoViewIfNeeded();
    await page.evaluate(() => Object.assign(window, { beforeBack: true }));
    const inView = () =>
      page
        .locator(`#${targetId}`)
        .evaluate((el) => {
          const box = el.getBoundingClientRect();
          return box.bottom > 0 && box.top < window.innerHeight;
        })
        .catch(() => false); // navigating
    await target.locator('a.thumb-link').click();
    await expect
      .poll(() => page.evaluate(() => 'pswp' in window && window.pswp !== undefined), PATIENTLY)
      .toBe(true);
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe(`/images/${imageId}`);
    await page.goBack();
    await expect.poll(() => page.locator('.pswp').count(), PATIENTLY).toBe(0);
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await page.evaluate(() => 'beforeBack' in window)).toBe(true);
    await expect.poll(inView, PATIENTLY).toBe(true);

    // Again, and on to the picture's own page by its title: Back from there returns to the gallery
    // (the viewer's entry gave way to the page), down to the card, in view.
    await target.locator('a.thumb-link').click();
    await page.locator('.pswp__caption a').click();
    await expect
      .poll(
        () =>
          page
            .locator('h1')
            .textContent()
            .catch(() => ''),
        PATIENTLY,
      )
      .toContain('Seeded');
    expect(new URL(page.url()).pathname).toBe(`/images/${imageId}`);
    await page.goBack();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
    await expect
      .poll(
        () => page.evaluate((id) => document.getElementById(id) !== null, targetId).catch(() => false),
        PATIENTLY,
      )
      .toBe(true);
    expect(await cards(page).count()).toBeGreaterThanOrEqual(total - 2);
    await expect.poll(inView, PATIENTLY).toBe(true);
    await page.screenshot({ path: screenshotPath('timeline-after-back-desktop') });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('pages with the plain link and searches with JavaScript off, on a phone', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, {
      javaScriptEnabled: false,
      viewport: { width: 390, height: 844 },
    });
    const page = await context.newPage();
    await galleryOf(page, 'phone@example.com', 70);
    await page.goto(`${origin}/?order=taken`);
    expect(await cards(page).count()).toBe(60);
    await page.screenshot({ path: screenshotPath('timeline-phone-nojs') });
    await page.getByRole('link', { name: 'Load more' }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get('cursor'), PATIENTLY).toMatch(/^t/);
    await expect.poll(() => cards(page).count(), PATIENTLY).toBe(11);

    // Words and the start of one: "seeded 6" finds Seeded 6 and Seeded 60 to 69.
    await page.getByLabel('Search titles and file names').fill('seeded 6');
    await page.keyboard.press('Enter');
    await expect.poll(() => new URL(page.url()).searchParams.get('q'), PATIENTLY).toBe('seeded 6');
    await expect.poll(() => cards(page).count(), PATIENTLY).toBe(11);
    expect(await cards(page).first().textContent()).toContain('Seeded 6');
    await page.screenshot({ path: screenshotPath('timeline-search-phone-nojs') });
    await context.close();
  });
});
