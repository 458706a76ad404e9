import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContextOptions, chromium } from 'playwright-core';

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
