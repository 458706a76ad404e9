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
import { startAppServer } from '../support/server.js';

describe.skipIf(skipBrowser)('in a real browser', () => {
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

  for (const javaScriptEnabled of [true, false]) {
    const mode = javaScriptEnabled ? 'with JavaScript' : 'without JavaScript';
    it(`signs up, sees the empty gallery, logs out and logs in again ${mode}`, {
      timeout: BROWSER_TEST_TIMEOUT_MS,
    }, async () => {
      const context = await newContext(browser, {
        javaScriptEnabled,
        viewport: { width: 1100, height: 700 },
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const email = `person-${javaScriptEnabled ? 'js' : 'nojs'}@example.com`;

      await page.goto(`${origin}/`);
      if (javaScriptEnabled) {
        // The first test, on a fresh install: its first visitor is sent to create the administrator.
        await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/signup');
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(
          'Create the administrator account',
        );
      } else {
        // Someone is here already: the login page, and a link to sign up.
        await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/login');
        await page.getByRole('link', { name: 'Sign up' }).first().click();
        await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/signup');
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Create your account');
      }
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.screenshot({ path: screenshotPath(`signup-${javaScriptEnabled ? 'js' : 'nojs'}`) });
      await page.getByRole('button', { name: 'Sign up' }).click();

      await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/');
      await expect
        .poll(() => page.getByRole('heading', { name: 'No images yet' }).isVisible(), PATIENTLY)
        .toBe(true);
      expect(await page.locator('header').textContent()).toContain(email);
      await page.screenshot({ path: screenshotPath(`gallery-empty-${javaScriptEnabled ? 'js' : 'nojs'}`) });

      await page.getByRole('button', { name: 'Log out' }).click();
      await expect.poll(() => page.getByText('You have been logged out.').isVisible(), PATIENTLY).toBe(true);

      await page.getByLabel('Password').fill('wrong password!!');
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect
        .poll(() => page.getByRole('alert').textContent(), PATIENTLY)
        .toContain('Incorrect email or password');

      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect
        .poll(() => page.getByRole('heading', { name: 'Your gallery' }).isVisible(), PATIENTLY)
        .toBe(true);
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 's3g_session');
      expect(session?.httpOnly).toBe(true);
      expect(session?.sameSite).toBe('Lax');
      // The CSP would report any inline script or style we forgot.
      expect(errors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
      await context.close();
    });
  }
});
