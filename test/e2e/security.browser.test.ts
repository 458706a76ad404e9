import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../support/app.js';
import { launchBrowser, skipBrowser } from '../support/browser.js';
import { startAppServer } from '../support/server.js';

// Two busy cores and argon2 sign-ups: conditions get far more than vitest's 1 s default.
const POLL = { timeout: 20_000, interval: 100 };

describe.skipIf(skipBrowser)('what a real browser does with hostile links and the back button', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;
  let phishing: http.Server;
  let phishingHost: string;
  const phished: string[] = [];

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open' });
    browser = await launchBrowser();
    phishing = http.createServer((req, res) => {
      phished.push(req.url ?? '');
      res.end('<h1>Please enter your password again</h1>');
    });
    await new Promise<void>((resolve) => phishing.listen(0, '127.0.0.1', resolve));
    phishingHost = `127.0.0.1:${(phishing.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    phishing?.closeAllConnections();
    await new Promise((resolve) => phishing?.close(resolve));
  });

  async function signUpIn(page: Page, email: string) {
    await page.goto(`${app.origin}/signup`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Your gallery' }).isVisible(), POLL).toBe(true);
  }

  it('stays on our origin when a signed-in person follows a login link whose next hides a tab', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signUpIn(page, 'phished@example.com');
    for (const next of [
      `/%09/${phishingHost}/phish`,
      `/%0a/${phishingHost}/phish`,
      `/%5C${phishingHost}/phish`,
    ]) {
      const answer = await page.goto(`${app.origin}/login?next=${next}`);
      expect(answer?.status(), next).toBeLessThan(500);
      expect(new URL(page.url()).origin, next).toBe(app.origin);
      await expect
        .poll(() => page.getByRole('heading', { name: 'Your gallery' }).isVisible(), POLL)
        .toBe(true);
    }
    expect(phished).toEqual([]);
    await context.close();
  });

  it('shows the login page, not the private gallery, on Back after logging out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signUpIn(page, 'back-button@example.com');
    await page.goto(`${app.origin}/shared`);
    await page.goto(`${app.origin}/`);
    expect(await page.locator('header').textContent()).toContain('back-button@example.com');
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => page.getByText('You have been logged out.').isVisible(), POLL).toBe(true);

    await page.goBack();
    await expect.poll(() => new URL(page.url()).pathname, POLL).toBe('/login');
    await expect.poll(() => page.getByRole('heading', { name: 'Log in' }).isVisible(), POLL).toBe(true);
    expect(await page.locator('header').textContent()).not.toContain('back-button@example.com');
    expect(await page.getByRole('heading', { name: 'Your gallery' }).count()).toBe(0);
    await context.close();
  });
});
