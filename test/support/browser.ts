import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { PASSWORD } from './app.js';
import { makeJpeg, makePng } from './images.js';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Browser tests may skip only on a developer machine without Chromium; under CI they must run. */
export const skipBrowser = !existsSync(CHROMIUM_PATH) && !process.env.CI;

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** Screenshots land in test-results/ (git-ignored) so a person can look at what the test saw. */
export function screenshotPath(name: string): string {
  const dir = path.resolve('test-results');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, `${name}.png`);
}

/**
 * Where a screenshot the README shows is written: test-results/ like any other, and docs/<name>.png
 * too when UPDATE_DOCS_SCREENSHOTS=1 (so a test run leaves the tracked pictures as they are).
 */
export async function docsScreenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: screenshotPath(name) });
  if (process.env.UPDATE_DOCS_SCREENSHOTS === '1')
    copyFileSync(screenshotPath(name), path.resolve('docs', `${name}.png`));
}

/**
 * How long a browser test waits for what a page should come to show. Sign-ups hash with argon2
 * and uploads make renditions, on two cores other test files share: seconds, not vitest's 1 s.
 */
export const PATIENTLY = { timeout: 30_000, interval: 100 } as const;
/** A whole browser test: several of those waits, a browser start and a few sign-ups. */
export const BROWSER_TEST_TIMEOUT_MS = 180_000;

/** A fresh browser profile whose actions and navigations wait as long as PATIENTLY does. */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(PATIENTLY.timeout);
  context.setDefaultNavigationTimeout(PATIENTLY.timeout);
  return context;
}

/** Signs up through the sign-up page, as a person would, and waits for the gallery it lands on. */
export async function signUpIn(page: Page, origin: string, email: string): Promise<void> {
  await page.goto(`${origin}/signup`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
}

/** The three pictures the album and accessibility tests start from (names the tests select by). */
export async function threePictures() {
  return [
    { name: 'harbour.jpg', mimeType: 'image/jpeg', buffer: await makeJpeg(900, 600) },
    { name: 'lighthouse.png', mimeType: 'image/png', buffer: await makePng(400, 600) },
    { name: 'market.jpg', mimeType: 'image/jpeg', buffer: await makeJpeg(700, 500) },
  ];
}

/**
 * Chooses the files on the upload page (upload.js sends them as they are chosen) and waits until
 * each is done, then reloads the gallery until it shows every thumbnail (they are made in the
 * background).
 */
export async function uploadAndWaitForThumbnails(
  page: Page,
  origin: string,
  files: { name: string; mimeType: string; buffer: Buffer }[],
): Promise<void> {
  await page.goto(`${origin}/upload`);
  await page.getByLabel('Choose images').setInputFiles(files);
  await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(files.length);
  await page.goto(`${origin}/`);
  await untilThumbnails(page, files.length);
}

/** Reloads the page until its grid shows `n` thumbnails (renditions are made in the background). */
export async function untilThumbnails(page: Page, n: number): Promise<void> {
  await expect
    .poll(async () => {
      await page.reload();
      return page.locator('#grid img').count();
    }, PATIENTLY)
    .toBe(n);
}
