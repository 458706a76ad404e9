/// <reference lib="dom" />
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/format.js';
import {
  BROWSER_TEST_TIMEOUT_MS,
  launchBrowser,
  newContext,
  PATIENTLY,
  screenshotPath,
  signUpIn,
  skipBrowser,
} from '../support/browser.js';
import { hiddenForm } from '../support/html.js';
import { makeJpeg, makePng } from '../support/images.js';
import { startAppServer } from '../support/server.js';

/** An upload limit small enough that a photo made here goes over it. */
const LIMIT = 40 * 1024;

/**
 * A plain form's upload that the embedded store refuses, as a person without JavaScript meets it:
 * a page in the app's words with a way back, never the store's XML (issue 17).
 */
describe.skipIf(skipBrowser)('refused uploads without JavaScript, in a real browser', () => {
  let app: Awaited<ReturnType<typeof startAppServer>>;
  let browser: Browser;

  beforeAll(async () => {
    app = await startAppServer({ SIGNUP: 'open', MAX_UPLOAD_BYTES: String(LIMIT) });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('answers a file over the limit with a page that says the limit and leads back, on a phone', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, {
      javaScriptEnabled: false,
      viewport: { width: 390, height: 844 },
      isMobile: true,
    });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'big@example.com');
    await page.goto(`${app.origin}/upload`);
    // Random pixels do not compress: well over the limit.
    const big = await sharp(randomBytes(200 * 200 * 3), { raw: { width: 200, height: 200, channels: 3 } })
      .jpeg({ quality: 95 })
      .toBuffer();
    expect(big.length).toBeGreaterThan(LIMIT);
    await page
      .getByLabel('Choose an image')
      .setInputFiles({ name: 'big.jpg', mimeType: 'image/jpeg', buffer: big });
    const answer = page.waitForResponse((res) => res.request().method() === 'POST');
    await page.getByRole('button', { name: 'Upload' }).click();
    const response = await answer;
    expect(response.status()).toBe(400);
    expect(response.headers()['content-type']).toBe('text/html; charset=utf-8');
    await expect
      .poll(() => page.getByRole('heading', { level: 1 }).textContent(), PATIENTLY)
      .toBe('Upload refused');
    expect(await page.getByRole('alert').textContent()).toBe(
      `That file is larger than the upload limit of ${formatBytes(LIMIT)}.`,
    );
    await page.screenshot({ path: screenshotPath('upload-refused-phone-nojs') });
    await page.getByRole('link', { name: 'Back to the upload page' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/upload');
    // Nothing was kept: the gallery is empty.
    await page.goto(`${app.origin}/`);
    expect(await page.locator('#grid li.thumb').count()).toBe(0);
    await context.close();
  });

  it('answers a file whose name is too long for a key with a page that asks to rename it', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { javaScriptEnabled: false });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'long-name@example.com');
    await page.goto(`${app.origin}/upload`);
    // 1,200 bytes of name: with the upload's prefix, past S3's 1,024-byte key limit.
    const name = `${'é'.repeat(600)}.png`;
    await page
      .getByLabel('Choose an image')
      .setInputFiles({ name, mimeType: 'image/png', buffer: await makePng() });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect
      .poll(() => page.getByRole('heading', { level: 1 }).textContent(), PATIENTLY)
      .toBe('Upload refused');
    expect(await page.getByRole('alert').textContent()).toContain('name is too long');
    await page.getByRole('link', { name: 'Back to the upload page' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/upload');
    await context.close();
  });

  it('keeps one file per upload page: a second tab opened before the first sent its file is told to open the page again', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { javaScriptEnabled: false });
    const first = await context.newPage();
    await signUpIn(first, app.origin, 'two-tabs@example.com');
    await first.goto(`${app.origin}/upload`);
    const second = await context.newPage();
    await second.goto(`${app.origin}/upload`); // the same upload, signed again: one file between them
    await first
      .getByLabel('Choose an image')
      .setInputFiles({ name: 'lake.png', mimeType: 'image/png', buffer: await makePng() });
    await first.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => new URL(first.url()).pathname, PATIENTLY).toMatch(/^\/images\/[a-z0-9]+$/);
    const forest = { name: 'forest.png', mimeType: 'image/png', buffer: await makePng(300, 200) };
    await second.getByLabel('Choose an image').setInputFiles(forest);
    await second.getByRole('button', { name: 'Upload' }).click();
    await expect
      .poll(() => second.getByRole('heading', { level: 1 }).textContent(), PATIENTLY)
      .toBe('Upload refused');
    expect(await second.getByRole('alert').textContent()).toBe(
      'This upload page has sent a file already. Open the upload page again to send another.',
    );
    await second.getByRole('link', { name: 'Back to the upload page' }).click();
    await expect.poll(() => new URL(second.url()).pathname, PATIENTLY).toBe('/upload');
    await second.getByLabel('Choose an image').setInputFiles(forest);
    await second.getByRole('button', { name: 'Upload' }).click();
    await expect
      .poll(() => second.getByRole('heading', { level: 1 }).textContent(), PATIENTLY)
      .toBe('forest');
    await second.goto(`${app.origin}/`);
    expect(await second.locator('#grid li.thumb').count()).toBe(2);
    await context.close();
  });

  it('keeps S3’s XML for scripts and tools, and answers a tampered form’s navigation with the page', async () => {
    const context = await newContext(browser, { javaScriptEnabled: false });
    const page = await context.newPage();
    await signUpIn(page, app.origin, 'tools@example.com');
    await page.goto(`${app.origin}/upload`);
    const { action, fields } = hiddenForm(await page.content(), '#upload-form');
    const cookies = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    // node:http, not fetch: fetch says Sec-Fetch-Mode: cors whatever it is told, as browsers' scripts do.
    const post = async (headers: Record<string, string>, file: Buffer, policyFields = fields) => {
      const form = new FormData();
      for (const [name, value] of policyFields) form.append(name, value);
      form.append('file', new Blob([new Uint8Array(file)]), 'x.jpg');
      const encoded = new Response(form);
      const body = Buffer.from(await encoded.arrayBuffer());
      return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>(
        (resolve, reject) => {
          const req = http.request(action as string, {
            method: 'POST',
            headers: {
              Cookie: cookies,
              'Content-Type': encoded.headers.get('content-type') as string,
              'Content-Length': body.length,
              ...headers,
            },
          });
          req.on('response', (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                text: Buffer.concat(chunks).toString(),
              }),
            );
          });
          req.on('error', reject);
          req.end(body);
        },
      );
    };
    const tooBig = Buffer.alloc(LIMIT + 1, 1);
    const script = await post({ 'Sec-Fetch-Mode': 'cors' }, tooBig);
    expect(script.status).toBe(400);
    expect(script.headers['content-type']).toBe('application/xml');
    expect(script.text).toContain(`<MaxSizeAllowed>${LIMIT}</MaxSizeAllowed>`);
    // A form whose signed policy was tampered with (its expiry moved) is refused by the store.
    const tampered = fields.map(([name, value]): [string, string] =>
      name === 'Policy'
        ? [
            name,
            Buffer.from(
              Buffer.from(value, 'base64')
                .toString()
                .replace(/"expiration":"[^"]+"/, '"expiration":"2000-01-01T00:00:00Z"'),
            ).toString('base64'),
          ]
        : [name, value],
    );
    const navigation = { 'Sec-Fetch-Mode': 'navigate', Accept: 'text/html' };
    const refused = await post(navigation, await makeJpeg(100, 100), tampered);
    expect(refused.status).toBe(403);
    expect(refused.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(refused.headers['content-security-policy']).toContain("default-src 'none'");
    const html = refused.text;
    expect(html).toContain('Upload refused');
    expect(html).not.toContain('<Error>');
    await context.close();
  });
});
