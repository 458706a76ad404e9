/// <reference lib="dom" />
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../support/app.js';
import {
  BROWSER_TEST_TIMEOUT_MS,
  docsScreenshot,
  launchBrowser,
  newContext,
  PATIENTLY,
  screenshotPath,
  skipBrowser,
} from '../support/browser.js';
import { makePhoto } from '../support/images.js';
import { startAppServer } from '../support/server.js';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** Shapes from panorama to tall portrait, so uneven rows would show. */
const SHAPES: [number, number][] = [
  [1200, 800],
  [600, 1000],
  [1600, 400],
  [700, 700],
  [500, 1100],
  [1000, 750],
  [900, 1300],
  [1300, 600],
  [800, 800],
  [640, 960],
  [1100, 500],
  [750, 1000],
];

describe.skipIf(skipBrowser)('the gallery grid: columns, phone layout, selection, keyboard, theme', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;
  let origin: string;
  /** The admin's session, saved once and reused by every context that needs it. */
  let storageState: Awaited<ReturnType<BrowserContext['storageState']>>;
  let adminId: string;
  let imagePath: string;

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    origin = app.origin;
    browser = await launchBrowser();
    const context = await newContext(browser, { viewport: DESKTOP });
    const page = await context.newPage();
    await page.goto(`${origin}/signup`);
    await page.getByLabel('Email').fill('admin@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign up' }).click();
    // Playwright's own waits: vitest's expect.poll works only inside a test.
    await page.waitForURL((url) => url.pathname === '/');
    await uploadMany(page);
    await page.goto(`${origin}/`);
    await page.waitForFunction((n) => document.querySelectorAll('#grid img').length === n, SHAPES.length, {
      polling: 200,
    });
    // Something in every table: an invite, a share link.
    await page.goto(`${origin}/admin/invites`);
    await page.getByRole('button', { name: 'Create invite link' }).click();
    await page.goto(`${origin}/`);
    await page.locator('#grid input[name="ids"]').first().check();
    await page.getByRole('button', { name: 'Share selected' }).click();
    await page.getByRole('button', { name: 'Create share link' }).click();
    await page.waitForURL((url) => url.pathname === '/shares');
    await page.goto(`${origin}/admin`);
    const href = (await page.locator('a[href^="/admin/users/"]').first().getAttribute('href')) ?? '';
    adminId = href.split('/').at(-1) ?? '';
    await page.goto(`${origin}/`);
    imagePath = (await page.locator('#grid .thumb-link').first().getAttribute('href')) ?? '';
    storageState = await context.storageState();
    await context.close();
  }, BROWSER_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function uploadMany(page: Page) {
    await page.goto(`${origin}/upload`);
    await page.getByText('…or drop images here').waitFor();
    const files = await Promise.all(
      SHAPES.map(async ([w, h], i) => ({
        name: `photo-${String(i + 1).padStart(2, '0')}.jpg`,
        b64: (
          await makePhoto('jpeg', w, h, {
            colour: { r: (i * 40) % 256, g: 120, b: 255 - ((i * 25) % 256) },
            bottom: { r: 250, g: (i * 60) % 256, b: 60 },
          })
        ).toString('base64'),
      })),
    );
    const dataTransfer = await page.evaluateHandle((list) => {
      const dt = new DataTransfer();
      for (const f of list) {
        const bytes = Uint8Array.from(atob(f.b64), (ch) => ch.charCodeAt(0));
        dt.items.add(new File([bytes], f.name, { type: 'image/jpeg' }));
      }
      return dt;
    }, files);
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer });
    await page.waitForFunction(
      (n) => document.querySelectorAll('#upload-list li.ok').length === n,
      SHAPES.length,
      { polling: 200 },
    );
  }

  async function signedIn(options: Parameters<typeof newContext>[1]) {
    const context = await newContext(browser, { ...options, storageState });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    return { context, page, cspErrors };
  }

  /** The cards' boxes as drawn: how many share the first row, and their sizes. */
  const layoutOf = (page: Page) =>
    page.locator('#grid > li.thumb').evaluateAll((cards) => {
      const boxes = cards.map((c) => c.getBoundingClientRect());
      const top = boxes[0]?.top ?? 0;
      const pictures = cards.map((c) => c.querySelector('.thumb-link')?.getBoundingClientRect());
      return {
        columns: boxes.filter((b) => Math.abs(b.top - top) < 1).length,
        heights: [...new Set(boxes.map((b) => Math.round(b.height)))],
        squares: pictures.every((p) => p && Math.abs(p.width - p.height) < 1),
      };
    });

  const loaded = (page: Page) =>
    expect
      .poll(
        () =>
          page
            .locator('#grid img')
            .evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length),
        PATIENTLY,
      )
      .toBe(SHAPES.length);

  const focusedCard = (page: Page) =>
    page.evaluate(() => {
      const card = document.activeElement?.closest('#grid > li.thumb');
      return card ? Array.from(document.querySelectorAll('#grid > li.thumb')).indexOf(card) : -1;
    });

  it('on a desktop, lays out 5+ even columns of square crops, with a 2x candidate in srcset', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page, cspErrors } = await signedIn({ viewport: DESKTOP, deviceScaleFactor: 2 });
    await page.goto(`${origin}/`);
    await loaded(page);
    const layout = await layoutOf(page);
    expect(layout.columns).toBeGreaterThanOrEqual(5);
    expect(layout.heights).toHaveLength(1);
    expect(layout.squares).toBe(true);
    // At 2x a cell of about 190 px needs more than the 400 px thumbnail of a panorama (its short
    // side is 100 px): the browser took the display copy for it.
    const srcsets = await page.locator('#grid img').evaluateAll((imgs) =>
      imgs.map((i) => ({
        srcset: i.getAttribute('srcset') ?? '',
        current: (i as HTMLImageElement).currentSrc,
      })),
    );
    expect(srcsets.every((s) => /\/thumbs\/.* \d+w, .*\/display\/.* \d+w$/.test(s.srcset))).toBe(true);
    expect(srcsets.some((s) => s.current.includes('/display/'))).toBe(true);
    await docsScreenshot(page, 'gallery');
    expect(cspErrors).toEqual([]);
    await context.close();
  });

  it('is one tab stop: arrows move by the drawn columns, Enter opens, the focus ring shows', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page } = await signedIn({ viewport: DESKTOP });
    await page.goto(`${origin}/`);
    await loaded(page);
    const { columns } = await layoutOf(page);
    // Tab from the top of the page until the grid has the focus.
    let presses = 0;
    while ((await focusedCard(page)) < 0 && presses < 40) {
      await page.keyboard.press('Tab');
      presses += 1;
    }
    expect(await focusedCard(page)).toBe(0);
    const ring = await page.evaluate(() => {
      const link = document.activeElement as HTMLElement;
      return getComputedStyle(link).outlineStyle + getComputedStyle(link).outlineWidth;
    });
    expect(ring).toBe('solid3px');
    await page.keyboard.press('ArrowRight');
    expect(await focusedCard(page)).toBe(1);
    await page.keyboard.press('ArrowDown');
    expect(await focusedCard(page)).toBe(1 + columns);
    await page.keyboard.press('ArrowLeft');
    expect(await focusedCard(page)).toBe(columns);
    await page.keyboard.press('ArrowUp');
    expect(await focusedCard(page)).toBe(0);
    await page.keyboard.press('End');
    expect(await focusedCard(page)).toBe(SHAPES.length - 1);
    await page.keyboard.press('Home');
    expect(await focusedCard(page)).toBe(0);
    // One more Tab leaves the grid: the cards' checkboxes and Delete links are not tab stops.
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Tab');
    expect(await focusedCard(page)).toBe(-1);
    // Shift+Tab comes back to the card last focused, and Enter opens it.
    await page.keyboard.press('Shift+Tab');
    expect(await focusedCard(page)).toBe(1);
    const href = await page.evaluate(() =>
      (document.activeElement as HTMLAnchorElement).getAttribute('href'),
    );
    await page.keyboard.press('Enter');
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe(href);
    await context.close();
  });

  it('counts the selection, ticks ranges with shift, selects all, and disables the actions when empty', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page } = await signedIn({ viewport: DESKTOP });
    await page.goto(`${origin}/`);
    await loaded(page);
    const count = page.locator('.selection-count');
    const share = page.getByRole('button', { name: 'Share selected' });
    const remove = page.getByRole('button', { name: 'Delete selected' });
    expect(await count.textContent()).toBe('0 selected');
    expect(await share.isDisabled()).toBe(true);
    expect(await remove.isDisabled()).toBe(true);
    const boxes = page.locator('#grid input[name="ids"]');
    await boxes.nth(1).click();
    expect(await count.textContent()).toBe('1 selected');
    expect(await remove.isEnabled()).toBe(true);
    await boxes.nth(4).click({ modifiers: ['Shift'] });
    expect(await count.textContent()).toBe('4 selected');
    expect(await boxes.evaluateAll((bs) => bs.map((b) => (b as HTMLInputElement).checked))).toEqual(
      SHAPES.map((_, i) => i >= 1 && i <= 4),
    );
    await page.getByRole('button', { name: 'Select all' }).click();
    expect(await count.textContent()).toBe(`${SHAPES.length} selected`);
    await page.getByRole('button', { name: 'Select none' }).click();
    expect(await count.textContent()).toBe('0 selected');
    expect(await share.isDisabled()).toBe(true);
    // From the keyboard: Space ticks the focused card, Shift+Space the range to it.
    await page.locator('#grid .thumb-link').first().focus();
    await page.keyboard.press('Space');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Shift+Space');
    expect(await count.textContent()).toBe('3 selected');
    expect(new URL(page.url()).pathname).toBe('/');
    await page.screenshot({ path: screenshotPath('grid-selection') });
    await context.close();
  });

  it('on a phone, shows 3+ columns, a folded menu, and no page wider than the screen', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page, cspErrors } = await signedIn({
      viewport: PHONE,
      isMobile: true,
      deviceScaleFactor: 3,
    });
    await page.goto(`${origin}/`);
    await loaded(page);
    const layout = await layoutOf(page);
    expect(layout.columns).toBeGreaterThanOrEqual(3);
    expect(layout.heights).toHaveLength(1);
    expect(layout.squares).toBe(true);
    // The checkbox and Delete are still there to press on every card.
    expect(await page.locator('#grid input[name="ids"]').first().isVisible()).toBe(true);
    expect(await page.locator('#grid .thumb-delete').first().isVisible()).toBe(true);
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.isVisible()).toBe(false);
    await docsScreenshot(page, 'phone-grid');
    await page.getByText('Menu', { exact: true }).click();
    expect(await nav.getByRole('link', { name: 'Admin' }).isVisible()).toBe(true);
    await page.screenshot({ path: screenshotPath('grid-phone-menu') });

    const widths: Record<string, number> = {};
    for (const path of [
      '/',
      '/upload',
      '/shares',
      '/guest-links',
      '/shared',
      '/admin',
      '/admin/invites',
      '/admin/audit',
      '/admin/changes',
      '/admin/processing',
      `/admin/users/${adminId}`,
      imagePath,
      '/account',
    ]) {
      await page.goto(`${origin}${path}`);
      widths[path] = await page.evaluate(() => document.documentElement.scrollWidth);
    }
    expect(widths).toEqual(Object.fromEntries(Object.keys(widths).map((p) => [p, PHONE.width])));
    // A table wider than the phone scrolls in its box, but each row's buttons and links stay in
    // view at its right edge.
    await page.goto(`${origin}/admin`);
    const box = await page
      .locator('.table-scroll')
      .first()
      .evaluate((el) => ({
        scrolls: el.scrollWidth > el.clientWidth,
        right: el.getBoundingClientRect().right,
      }));
    expect(box.scrolls).toBe(true);
    const edges = await page
      .locator('.table-scroll td.actions a')
      .evaluateAll((links) => links.map((a) => a.getBoundingClientRect().right));
    expect(edges.length).toBeGreaterThan(0);
    expect(Math.max(...edges)).toBeLessThanOrEqual(box.right);
    await page.screenshot({ path: screenshotPath('admin-phone-table') });
    expect(cspErrors).toEqual([]);
    await context.close();
  });

  it('follows the system theme, and remembers a chosen one from the first paint', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page } = await signedIn({ viewport: DESKTOP, colorScheme: 'dark' });
    const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await page.goto(`${origin}/`);
    expect(await background()).toBe('rgb(18, 21, 28)');
    await page.screenshot({ path: screenshotPath('grid-dark') });
    const toggle = page.getByRole('button', { name: /^Theme:/ });
    expect(await toggle.textContent()).toBe('Theme: system');
    await toggle.click();
    expect(await toggle.textContent()).toBe('Theme: light');
    expect(await background()).toBe('rgb(246, 247, 249)');
    // On the next page the theme is set before anything renders: seen from the first element parsed.
    await page.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (!document.body) return;
        (window as unknown as { firstTheme: string }).firstTheme =
          document.documentElement.dataset.theme ?? '';
        observer.disconnect();
      }).observe(document, { childList: true, subtree: true });
    });
    await page.goto(`${origin}/shared`);
    expect(await page.evaluate(() => (window as unknown as { firstTheme: string }).firstTheme)).toBe('light');
    expect(await background()).toBe('rgb(246, 247, 249)');
    await toggle.click();
    expect(await background()).toBe('rgb(18, 21, 28)');
    await toggle.click();
    expect(await toggle.textContent()).toBe('Theme: system');
    expect(await page.evaluate(() => localStorage.getItem('s3g-theme'))).toBeNull();
    await context.close();
  });

  it('without JavaScript, the bulk form still works and an empty selection gets a sentence, not an error', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    for (const viewport of [DESKTOP, PHONE]) {
      const { context, page } = await signedIn({ viewport, javaScriptEnabled: false });
      await page.goto(`${origin}/`);
      const remove = page.getByRole('button', { name: 'Delete selected' });
      expect(await remove.isEnabled()).toBe(true);
      await remove.click();
      await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
      expect(await page.getByRole('status').textContent()).toBe(
        'Nothing was selected: tick the images first, then press the button again.',
      );
      // The menu: a bar on a desktop, a <details> to open on a phone.
      const nav = page.getByRole('navigation', { name: 'Main' });
      if (viewport === PHONE) {
        expect(await nav.isVisible()).toBe(false);
        await page.getByText('Menu', { exact: true }).click();
      }
      expect(await nav.getByRole('link', { name: 'Links' }).isVisible()).toBe(true);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(viewport.width);
      await context.close();
    }
    const { context, page } = await signedIn({ viewport: PHONE, javaScriptEnabled: false });
    await page.goto(`${origin}/`);
    const before = await page.locator('#grid > li.thumb').count();
    await page.locator('#grid input[name="ids"]').last().check();
    await page.getByRole('button', { name: 'Delete selected' }).click();
    await page.getByRole('button', { name: 'Move to trash' }).click();
    await expect
      .poll(() => page.locator('.notice.undo p').textContent(), PATIENTLY)
      .toBe('Moved 1 image to the trash.');
    expect(await page.locator('#grid > li.thumb').count()).toBe(before - 1);
    // Changed their mind: Undo, right there, brings it back.
    await page.getByRole('button', { name: 'Undo' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), PATIENTLY).toBe('Restored 1 image.');
    expect(await page.locator('#grid > li.thumb').count()).toBe(before);
    await context.close();
  });

  it('on a desktop, wraps a title onto a second line instead of cutting it after a word, and shows a longer one whole on hover', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page } = await signedIn({ viewport: DESKTOP });
    // Renamed as a person would, on the image's page. A card's title has about 90 px beside its
    // checkbox and Delete on a desktop: one line held 'Harbour at' and cut the rest.
    const desktopTitle = 'Harbour at dusk';
    const longTitle = 'The old lighthouse on the headland, from the ferry at first light in late October';
    const rename = async (path: string, title: string) => {
      await page.goto(`${origin}${path}`);
      await page.getByLabel('Title').fill(title);
      await page.getByRole('button', { name: 'Rename' }).click();
      await expect.poll(() => page.locator('h1').textContent(), PATIENTLY).toBe(title);
    };
    const cards = page.locator('#grid > li.thumb');
    await page.goto(`${origin}/`);
    const second = (await cards.nth(1).locator('.thumb-link').getAttribute('href')) ?? '';
    await rename(imagePath, desktopTitle);
    await rename(second, longTitle);
    /** A card's title as drawn: its lines, whether any of it is cut off, and its tooltip. */
    const drawn = (title: string) =>
      page.locator('#grid .thumb-title', { hasText: title }).evaluate((el) => {
        const lineHeight = Number.parseFloat(getComputedStyle(el).lineHeight);
        return {
          lines: Math.round(el.clientHeight / lineHeight),
          isCut: el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1,
          tooltip: el.getAttribute('title'),
        };
      });
    await page.goto(`${origin}/`);
    expect(await drawn(desktopTitle)).toEqual({ lines: 2, isCut: false, tooltip: desktopTitle });
    const long = await drawn(longTitle);
    expect(long).toEqual({ lines: 2, isCut: true, tooltip: longTitle });
    // The pictures stay the same squares, in the same columns.
    const layout = await layoutOf(page);
    expect(layout.squares).toBe(true);
    expect(layout.columns).toBeGreaterThanOrEqual(5);
    await page.screenshot({ path: screenshotPath('grid-long-titles') });
    await context.close();
  });
});
