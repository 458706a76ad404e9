/// <reference lib="dom" />
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
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
import { startAppServer } from '../support/server.js';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** A small landscape in the given colours, so the viewer's screenshot shows something to look at. */
function scene(width: number, height: number, sky: string, land: string) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="${sky}"/><stop offset="1" stop-color="#fde8c8"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#s)"/>
    <circle cx="${width * 0.7}" cy="${height * 0.3}" r="${Math.min(width, height) * 0.08}" fill="#fff6d5"/>
    <path d="M0 ${height * 0.7} Q ${width * 0.3} ${height * 0.5} ${width * 0.6} ${height * 0.68} T ${width} ${height * 0.62}
      V ${height} H 0 Z" fill="${land}"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer();
}

/** Uploaded oldest first: the grid shows them newest first, so the portrait one is second. */
const FILES = [
  { name: 'Harbour at dusk.jpg', make: () => scene(1600, 1000, '#5b7fb8', '#2f4858') },
  { name: 'Green valley.jpg', make: () => scene(1200, 1200, '#7fb3d5', '#4a7c3a') },
  { name: 'Tall cliff.jpg', make: () => scene(1000, 1500, '#8e6fb8', '#6b4e3d') },
  { name: 'Morning fields.jpg', make: () => scene(1800, 1200, '#f2a65a', '#7a8b3c') },
];

describe.skipIf(skipBrowser)('the image viewer in a real browser', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;
  let signedIn: Awaited<ReturnType<BrowserContext['storageState']>>;
  /** the images in the grid's order, newest first */
  let ids: string[];
  let titles: string[];

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    browser = await launchBrowser();
    const context = await newContext(browser, { viewport: DESKTOP });
    const page = await context.newPage();
    await page.goto(`${app.origin}/signup`);
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.waitForURL(`${app.origin}/`);
    const files = await Promise.all(
      FILES.map(async (f) => ({ name: f.name, b64: (await f.make()).toString('base64') })),
    );
    // What upload.js does for each file: a policy, the bytes straight to the bucket, completion.
    await page.evaluate(async (list) => {
      const postJson = async (url: string, body: unknown) => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify(body),
        });
        if (!res.ok) throw new Error(`${url}: ${res.status}`);
        return res.json();
      };
      for (const f of list) {
        const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
        const policy = await postJson('/uploads/presign', { name: f.name, size: bytes.length });
        const form = new FormData();
        for (const [k, v] of Object.entries(policy.fields as Record<string, string>)) form.append(k, v);
        form.append('Content-Type', 'image/jpeg');
        form.append('file', new Blob([bytes], { type: 'image/jpeg' }), f.name);
        const stored = await fetch(policy.url, { method: 'POST', body: form });
        if (!stored.ok) throw new Error(`bucket: ${stored.status}`);
        await postJson('/uploads/complete', { key: policy.key });
      }
    }, files);
    // Renditions are made in the background (expect.poll is for tests, not their set-up).
    for (let tries = 0; ; tries++) {
      await page.goto(`${app.origin}/`);
      if ((await page.locator('#grid a[data-pswp-src]').count()) === FILES.length) break;
      if (tries > 100) throw new Error('the images were not processed');
      await page.waitForTimeout(300);
    }
    ids = await page
      .locator('#grid a.thumb-link')
      .evaluateAll((links) => links.map((a) => (a as HTMLElement).dataset.imageId as string));
    titles = FILES.map((f) => f.name.replace('.jpg', '')).reverse();
    signedIn = await context.storageState();
    await context.close();
  }, BROWSER_TEST_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** A signed-in page that records what the browser says about CSP and script errors. */
  async function ownerPage(options: Parameters<Browser['newContext']>[0] = {}) {
    const context = await newContext(browser, { storageState: signedIn, ...options });
    return { context, ...watched(await context.newPage()) };
  }
  function watched(page: Page) {
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (err) => errors.push(err.message));
    return { page, errors };
  }

  const pathOf = (page: Page) => new URL(page.url()).pathname;
  const isOpen = (page: Page) =>
    page
      .locator('.pswp')
      .count()
      .then((n) => n > 0);
  /** Open, and done with its opening animation (keys wait for it). */
  const isShown = (page: Page) =>
    page.evaluate(
      () => (window as unknown as { pswp?: { opener: { isOpen: boolean } } }).pswp?.opener.isOpen === true,
    );
  /** The open picture's <img>, once its display copy has loaded, and where it is on the screen. */
  const shownPicture = (page: Page) =>
    page.evaluate(() => {
      const img = (
        window as unknown as { pswp?: { currSlide?: { content?: { element?: HTMLImageElement } } } }
      ).pswp?.currSlide?.content?.element;
      if (!img?.complete || img.naturalWidth === 0) return null;
      const r = img.getBoundingClientRect();
      return { src: img.currentSrc, left: r.left, top: r.top, right: r.right, bottom: r.bottom };
    });
  const focusedImageId = (page: Page) =>
    page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.imageId ?? null);

  it('opens from the grid at 1280x800, steps with →, closes with Esc and Back, and gives focus back', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page, errors } = await ownerPage({ viewport: DESKTOP });
    await page.goto(`${app.origin}/`);
    await page.locator('#grid a.thumb-link').first().click();
    await expect.poll(() => isOpen(page), PATIENTLY).toBe(true);
    await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[0]}`);
    await expect.poll(() => shownPicture(page), PATIENTLY).not.toBeNull();
    await expect.poll(() => isShown(page), PATIENTLY).toBe(true);

    await page.keyboard.press('ArrowRight');
    await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[1]}`);
    await expect.poll(() => page.locator('.pswp__caption').textContent(), PATIENTLY).toBe(titles[1]);
    // The tall picture fits the window, whole.
    await expect.poll(() => shownPicture(page), PATIENTLY).not.toBeNull();
    await page.waitForTimeout(400); // the slide's transition
    const box = await shownPicture(page);
    expect(box?.top).toBeGreaterThanOrEqual(0);
    expect(box?.bottom).toBeLessThanOrEqual(DESKTOP.height + 0.5);
    expect(box?.left).toBeGreaterThanOrEqual(0);
    expect(box?.right).toBeLessThanOrEqual(DESKTOP.width + 0.5);
    expect((box?.bottom ?? 0) - (box?.top ?? 0)).toBeGreaterThan(DESKTOP.height * 0.8);
    await docsScreenshot(page, 'viewer');

    await page.keyboard.press('Escape');
    await expect.poll(() => isOpen(page), PATIENTLY).toBe(false);
    await expect.poll(() => pathOf(page), PATIENTLY).toBe('/');
    // Focus is on the card of the picture shown last, so the keyboard carries on from there.
    await expect.poll(() => focusedImageId(page), PATIENTLY).toBe(ids[1]);

    // From the keyboard: Enter on a card opens it, Tab stays inside the viewer, Back closes it.
    await page.locator(`#grid a[data-image-id="${ids[2]}"]`).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => isOpen(page), PATIENTLY).toBe(true);
    await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[2]}`);
    await expect.poll(() => isShown(page), PATIENTLY).toBe(true);
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => Boolean(document.activeElement?.closest('.pswp')))).toBe(true);
    }
    await page.keyboard.press('ArrowLeft');
    await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[1]}`);
    await page.goBack();
    await expect.poll(() => isOpen(page), PATIENTLY).toBe(false);
    await expect.poll(() => pathOf(page), PATIENTLY).toBe('/');
    await expect.poll(() => focusedImageId(page), PATIENTLY).toBe(ids[1]);
    // One entry for the whole visit: one more Back leaves the gallery.
    await page.goBack();
    await expect.poll(() => pathOf(page), PATIENTLY).not.toBe('/');

    expect(errors).toEqual([]);
    await context.close();
  });

  it('swipes to the next picture and pinches to zoom on a 390x844 phone; Back closes it', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page, errors } = await ownerPage({ viewport: PHONE, hasTouch: true, isMobile: true });
    await page.goto(`${app.origin}/`);
    await page.locator('#grid a.thumb-link').first().tap();
    await expect.poll(() => isOpen(page), PATIENTLY).toBe(true);
    await expect.poll(() => shownPicture(page), PATIENTLY).not.toBeNull();
    await page.waitForTimeout(500); // the opening animation

    // Real touch events, as a finger makes them: PhotoSwipe reads them as pointer events.
    const cdp = await context.newCDPSession(page);
    const touch = (type: 'touchStart' | 'touchMove' | 'touchEnd', touchPoints: { x: number; y: number }[]) =>
      cdp.send('Input.dispatchTouchEvent', { type, touchPoints });
    await touch('touchStart', [{ x: 320, y: 420 }]);
    for (let x = 300; x >= 40; x -= 26) await touch('touchMove', [{ x, y: 420 }]);
    await touch('touchEnd', []);
    await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[1]}`);
    await expect.poll(() => shownPicture(page), PATIENTLY).not.toBeNull();
    await page.waitForTimeout(500);
    const box = await shownPicture(page);
    expect(box?.left).toBeGreaterThanOrEqual(-0.5);
    expect(box?.right).toBeLessThanOrEqual(PHONE.width + 0.5);
    await page.screenshot({ path: screenshotPath('viewer-phone') });

    const zoom = () =>
      page.evaluate(() => {
        const slide = (
          window as unknown as {
            pswp: { currSlide: { currZoomLevel: number; zoomLevels: { fit: number } } };
          }
        ).pswp.currSlide;
        return slide.currZoomLevel / slide.zoomLevels.fit;
      });
    expect(await zoom()).toBeCloseTo(1);
    await touch('touchStart', [
      { x: 175, y: 420 },
      { x: 215, y: 420 },
    ]);
    for (let d = 40; d <= 160; d += 10)
      await touch('touchMove', [
        { x: 195 - d, y: 420 },
        { x: 195 + d, y: 420 },
      ]);
    await touch('touchEnd', []);
    await expect.poll(zoom, PATIENTLY).toBeGreaterThan(1.5);
    await page.screenshot({ path: screenshotPath('viewer-phone-zoomed') });

    await page.goBack();
    await expect.poll(() => isOpen(page), PATIENTLY).toBe(false);
    expect(pathOf(page)).toBe('/');
    expect(errors).toEqual([]);
    await context.close();
  });

  for (const viewport of [DESKTOP, PHONE]) {
    it(`browses with previous/next links and fits the picture with JavaScript off at ${viewport.width}px`, {
      timeout: BROWSER_TEST_TIMEOUT_MS,
    }, async () => {
      const { context, page } = await ownerPage({ viewport, javaScriptEnabled: false });
      await page.goto(`${app.origin}/`);
      await page.locator('#grid a.thumb-link').first().click();
      await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[0]}`);
      expect(await page.getByRole('link', { name: /Previous/ }).count()).toBe(0);
      await page.getByRole('link', { name: /Next/ }).click();
      await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[1]}`);
      // The tall one: no higher than the window, and nothing scrolls sideways.
      await expect
        .poll(
          () => page.locator('figure.display img').evaluate((img: HTMLImageElement) => img.naturalWidth),
          PATIENTLY,
        )
        .toBeGreaterThan(0);
      const img = await page.locator('figure.display img').boundingBox();
      expect(img?.height).toBeLessThanOrEqual(viewport.height);
      expect(img?.height).toBeGreaterThan(viewport.height * 0.5);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        viewport.width,
      );
      await page.screenshot({ path: screenshotPath(`image-page-nojs-${viewport.width}`) });
      await page.getByRole('link', { name: /Previous/ }).click();
      await expect.poll(() => pathOf(page), PATIENTLY).toBe(`/images/${ids[0]}`);
      await page.goto(`${app.origin}/images/${ids.at(-1)}`);
      expect(await page.getByRole('link', { name: /Next/ }).count()).toBe(0);
      await context.close();
    });
  }

  it("opens a share link's pictures in the same viewer, with #image= addresses", {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { context, page } = await ownerPage({ viewport: DESKTOP });
    await page.goto(`${app.origin}/`);
    await page.getByLabel(`Select ${titles[0]}`).check();
    await page.getByLabel(`Select ${titles[1]}`).check();
    await page.getByRole('button', { name: 'Share selected' }).click();
    await page.getByRole('button', { name: 'Create share link' }).click();
    const link = await page.getByRole('textbox', { name: 'New share link' }).inputValue();
    await context.close();

    const stranger = await newContext(browser, { viewport: DESKTOP });
    const { page: visitor, errors } = watched(await stranger.newPage());
    await visitor.goto(link);
    const pictures = visitor.locator('.shared a[data-pswp-src]');
    await expect.poll(() => pictures.count(), PATIENTLY).toBe(2);
    await pictures.first().click();
    await expect.poll(() => isOpen(visitor), PATIENTLY).toBe(true);
    await expect.poll(() => new URL(visitor.url()).hash, PATIENTLY).toBe(`#image=${ids[0]}`);
    await expect.poll(() => isShown(visitor), PATIENTLY).toBe(true);
    await visitor.keyboard.press('ArrowRight');
    await expect.poll(() => new URL(visitor.url()).hash, PATIENTLY).toBe(`#image=${ids[1]}`);
    await visitor.goBack();
    await expect.poll(() => isOpen(visitor), PATIENTLY).toBe(false);
    await expect.poll(() => new URL(visitor.url()).hash, PATIENTLY).toBe('');

    // Such an address opens on its picture.
    await visitor.goto(`${link}#image=${ids[1]}`);
    await expect.poll(() => isOpen(visitor), PATIENTLY).toBe(true);
    await expect.poll(() => visitor.locator('.pswp__caption').textContent(), PATIENTLY).toBe(titles[1]);
    expect(errors).toEqual([]);
    await stranger.close();
  });
});
