/// <reference lib="dom" />
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BROWSER_TEST_TIMEOUT_MS,
  launchBrowser,
  newContext,
  PATIENTLY,
  signUpIn,
  skipBrowser,
  threePictures,
  uploadAndWaitForThumbnails,
} from '../support/browser.js';
import { startAppServer } from '../support/server.js';

/** axe-core's source, evaluated into each page: that works with the page's own scripts off too. */
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The WCAG 2.1 A and AA rules axe-core checks automatically. */
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

interface Violation {
  id: string;
  help: string;
  targets: string[];
}

/** axe-core's findings on the page as it is now: one line per rule broken, naming where. */
async function violations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const run = page.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: { run(o: object): Promise<{ violations: unknown[] }> } }).axe;
    const result = await axe.run({ runOnly: { type: 'tag', values: tags } });
    return (
      result.violations as { id: string; help: string; nodes: { target: string[] }[] }[]
    ).map<Violation>((v) => ({ id: v.id, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }));
  }, WCAG);
  // An evaluation has no timeout of its own: a page that never lets axe finish fails here, by name.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`axe did not finish on ${page.url()}`)), PATIENTLY.timeout);
  });
  const found = await Promise.race([run, late]).finally(() => clearTimeout(timer));
  return found.map((v) => `${v.id} (${v.help}): ${v.targets.slice(0, 3).join(', ')}`);
}

/**
 * axe needs scripts, and a page whose scripts are off does not run the ones it is given either. So
 * a page served to a JS-off browser is checked as a copy, in a page with scripts on at the same
 * origin (its styles and images load as they did): its own <script> elements removed and its
 * <noscript> content shown, which is what the JS-off browser showed.
 */
async function copyChecker(browser: Browser, viewport: { width: number; height: number }) {
  const context = await browser.newContext({ viewport, bypassCSP: true });
  const page = await context.newPage();
  let html = '';
  await page.route('**/__axe-copy', (route) => route.fulfill({ contentType: 'text/html', body: html }));
  return {
    async violations(of: Page): Promise<string[]> {
      html = (await of.content()).replace(/<script\b[\s\S]*?<\/script>/gi, '').replace(/<\/?noscript>/gi, '');
      await page.goto(new URL('/__axe-copy', of.url()).href);
      return violations(page);
    },
    close: () => context.close(),
  };
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const CASES = [
  { name: 'desktop', viewport: DESKTOP, javaScriptEnabled: true },
  { name: 'phone', viewport: PHONE, javaScriptEnabled: true },
  { name: 'phone', viewport: PHONE, javaScriptEnabled: false },
] as const;

describe.skipIf(skipBrowser)('every page passes axe-core’s WCAG 2.1 AA checks', () => {
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

  it('on a desktop and a phone, with scripts on and (on the phone) off, signed in as an admin and signed out', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const { origin } = app;
    // A gallery with something in it: three uploads through the upload page, an album, a share link.
    const setup = await newContext(browser, { viewport: DESKTOP });
    const page = await setup.newPage();
    await signUpIn(page, origin, 'admin@example.com');
    await uploadAndWaitForThumbnails(page, origin, await threePictures());
    const imageId = (await page
      .locator('#grid a.thumb-link')
      .first()
      .getAttribute('data-image-id')) as string;
    await page.getByLabel('Select harbour').check();
    await page.getByRole('button', { name: 'Add to album' }).click();
    await page.getByLabel('Album name').fill('Harbour days');
    await page.getByRole('button', { name: 'Make a new album with them' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/albums\/[a-z0-9]+$/);
    const albumPath = new URL(page.url()).pathname;
    await page.getByRole('button', { name: 'Create share link' }).click();
    const shareLink = await page.getByRole('textbox', { name: 'New share link' }).inputValue();
    const storage = await setup.storageState();
    await setup.close();

    const signedIn = [
      '/',
      '/?order=taken',
      '/?q=harb',
      '/?q=nothing-matches-this',
      '/shared',
      '/albums',
      albumPath,
      `/images/${imageId}`,
      `/images/${imageId}?album=${albumPath.split('/').pop()}`,
      `/images/${imageId}/replace`,
      `/images/${imageId}/delete`,
      '/upload',
      '/trash',
      '/shares',
      '/admin/changes',
      '/account',
      '/account/password',
      '/admin',
      '/admin/invites',
      '/admin/audit',
      '/admin/processing',
    ];
    const signedOut = ['/login', '/signup', new URL(shareLink).pathname];

    // The check can fail: a picture without a text alternative is found.
    const probe = await browser.newPage();
    await probe.setContent(
      '<!doctype html><html lang="en"><title>t</title><main><img src="x.png"></main></html>',
    );
    expect((await violations(probe)).join('\n')).toContain('image-alt');
    await probe.close();

    const failures: string[] = [];
    let runs = 0;
    for (const { name, viewport, javaScriptEnabled } of CASES) {
      const label = `${name}, scripts ${javaScriptEnabled ? 'on' : 'off'}`;
      const admin = await newContext(browser, { viewport, javaScriptEnabled, storageState: storage });
      const stranger = await newContext(browser, { viewport, javaScriptEnabled });
      const copies = javaScriptEnabled ? null : await copyChecker(browser, viewport);
      for (const [context, paths] of [
        [admin, signedIn],
        [stranger, signedOut],
      ] as const) {
        const tab = await context.newPage();
        for (const path of paths) {
          const res = await tab.goto(`${origin}${path}`);
          expect(res?.status(), `${path} (${label})`).toBeLessThan(400);
          const found = copies ? await copies.violations(tab) : await violations(tab);
          for (const line of found) failures.push(`${path} (${label}): ${line}`);
          runs++;
        }
        await tab.close();
      }
      // The viewer, open: its controls and caption.
      if (javaScriptEnabled) {
        const tab = await admin.newPage();
        await tab.goto(`${origin}/`);
        await tab.locator('#grid a.thumb-link').first().click();
        await expect.poll(() => tab.locator('.pswp--open.pswp--ui-visible').count(), PATIENTLY).toBe(1);
        // Checked once the opening fade has ended: halfway through it, any text is low in contrast.
        // (A spinner's endless animation never ends: only those that do are waited for.)
        const fading = () =>
          document
            .getAnimations()
            .filter((a) => Number.isFinite(Number(a.effect?.getComputedTiming().endTime))).length;
        await expect.poll(() => tab.evaluate(fading), PATIENTLY).toBe(0);
        for (const line of await violations(tab)) failures.push(`viewer (${label}): ${line}`);
        runs++;
        await tab.close();
      }
      await copies?.close();
      await admin.close();
      await stranger.close();
    }
    expect(failures).toEqual([]);
    expect(runs).toBe(CASES.length * (signedIn.length + signedOut.length) + 2);
  });
});
