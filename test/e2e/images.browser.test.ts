/// <reference lib="dom" />
import { createHash, randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
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
} from '../support/browser.js';
import { canMakeHeic, makeHeic, makeJpeg, makePng } from '../support/images.js';
import { startAppServer } from '../support/server.js';

describe.skipIf(skipBrowser)('uploading in a real browser, on the embedded store', () => {
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

  it('uploads through the plain form with JavaScript off and lands on the new image, titled by its file name', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, {
      javaScriptEnabled: false,
      viewport: { width: 1100, height: 800 },
    });
    const page = await context.newPage();
    await signUpIn(page, origin, 'nojs@example.com');
    await page.getByRole('link', { name: 'Upload images' }).first().click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toBe('/upload');
    await page.getByLabel('Choose an image').setInputFiles({
      name: 'Mont Blanc – été "2026".jpg',
      mimeType: 'image/jpeg',
      buffer: await makeJpeg(1000, 700),
    });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => new URL(page.url()).pathname, PATIENTLY).toMatch(/^\/images\/[a-z0-9]+$/);
    await expect.poll(() => page.getByRole('status').textContent(), PATIENTLY).toContain('Uploaded.');
    // The bucket kept the file's name in its key, as S3 does with ${filename}: it is the title.
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Mont Blanc – été "2026"');
    expect(await page.locator('dd').first().textContent()).toBe('Mont Blanc – été "2026".jpg');
    await expect
      .poll(
        () => page.locator('figure.display img').evaluate((img: HTMLImageElement) => img.naturalWidth),
        PATIENTLY,
      )
      .toBe(1000);
    await page.screenshot({ path: screenshotPath('image-page-nojs') });
    await context.close();
  });

  it('uploads two dropped files with progress bars with JavaScript on, then deletes one in place', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    const context = await newContext(browser, { viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    await signUpIn(page, origin, 'js@example.com');
    const completions: { etag?: string }[] = [];
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/uploads/complete'))
        completions.push(req.postDataJSON());
    });
    await page.goto(`${origin}/upload`);
    await expect.poll(() => page.getByText('…or drop images here').isVisible(), PATIENTLY).toBe(true);

    const files = [
      { name: 'first.png', type: 'image/png', b64: (await makePng(500, 400)).toString('base64') },
      { name: 'second.jpg', type: 'image/jpeg', b64: (await makeJpeg(900, 600)).toString('base64') },
      { name: 'notes.txt', type: 'text/plain', b64: Buffer.from('hello').toString('base64') },
    ];
    const dataTransfer = await page.evaluateHandle((list) => {
      const dt = new DataTransfer();
      for (const f of list) {
        const bytes = Uint8Array.from(atob(f.b64), (ch) => ch.charCodeAt(0));
        dt.items.add(new File([bytes], f.name, { type: f.type }));
      }
      return dt;
    }, files);
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer });

    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(2);
    expect(await page.locator('#upload-list li.ok progress').count()).toBe(2);
    // Each completion names the file the bucket stored by its ETag (the embedded store's is the MD5).
    const md5s = files
      .slice(0, 2)
      .map((f) => createHash('md5').update(Buffer.from(f.b64, 'base64')).digest('hex'));
    expect(completions.map((c) => c.etag).sort()).toEqual(md5s.map((m) => `"${m}"`).sort());
    expect(await page.locator('#upload-list li.failed').textContent()).toContain(
      'Not a JPEG, PNG, GIF, WebP, AVIF, TIFF, HEIC or HEIF',
    );
    // Sizes read as on the server's pages: the script loads the same formatBytes.
    expect(await page.locator('#upload-list li.failed .upload-name').textContent()).toBe('notes.txt (5 B)');
    await page.screenshot({ path: screenshotPath('upload-progress-js') });

    await page.goto(`${origin}/`);
    expect(await page.locator('#grid li.thumb').count()).toBe(2);
    await expect
      .poll(
        () =>
          page
            .locator('#grid img')
            .evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length),
        PATIENTLY,
      )
      .toBe(2);
    await page.screenshot({ path: screenshotPath('gallery-js') });

    // Delete asks nothing (the trash keeps it): the card says where it went, with Undo.
    const firstCard = page.locator('#grid li.thumb').first();
    const title = (await firstCard.locator('.thumb-title').textContent())?.replace('Select ', '') ?? '';
    await firstCard.getByRole('link', { name: /Delete/ }).click();
    await expect.poll(() => page.locator('#grid li.thumb:not(.thumb-trashed)').count(), PATIENTLY).toBe(1);
    expect(await page.locator('.thumb-trashed').textContent()).toContain(`“${title}” is in the trash.`);
    expect(new URL(page.url()).pathname).toBe('/');
    await page.reload();
    expect(await page.locator('#grid li.thumb').count()).toBe(1);
    expect(await page.locator('#grid').textContent()).not.toContain(title);
    expect(cspErrors).toEqual([]);
    await context.close();
  });
  it('on a phone, fits three of four chosen files into a 1 MiB quota and says why the fourth did not', {
    timeout: BROWSER_TEST_TIMEOUT_MS,
  }, async () => {
    // The first account of this server (the JS-off test above) is its admin: it sets the quota.
    const adminContext = await newContext(browser, { viewport: { width: 1100, height: 800 } });
    const adminPage = await adminContext.newPage();
    await adminPage.goto(`${origin}/login`);
    await adminPage.getByLabel('Email').fill('nojs@example.com');
    await adminPage.getByLabel('Password').fill(PASSWORD);
    await adminPage.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => new URL(adminPage.url()).pathname, PATIENTLY).toBe('/');

    const context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    await signUpIn(page, origin, 'small-quota@example.com');
    await adminPage.goto(`${origin}/admin`);
    await adminPage.getByRole('link', { name: 'Manage small-quota@example.com' }).click();
    await adminPage.getByLabel('Storage limit in MiB').fill('1');
    await adminPage.getByRole('button', { name: 'Save quota' }).click();
    await adminContext.close();

    await page.goto(`${origin}/upload`);
    await expect.poll(() => page.getByText('…or drop images here').isVisible(), PATIENTLY).toBe(true);
    const usage = page.locator('#upload-usage');
    expect(await usage.textContent()).toMatch(/You use: 0 B of 1\.0 MiB · 0 images/);
    // Random pixels do not compress: about 300 KiB each.
    const files = await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (name) => ({
        name: `${name}.png`,
        mimeType: 'image/png',
        buffer: await sharp(randomBytes(320 * 320 * 3), { raw: { width: 320, height: 320, channels: 3 } })
          .png()
          .toBuffer(),
      })),
    );
    // Choosing the files starts the upload.
    await page.getByLabel('Choose images').setInputFiles(files);
    await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(3);
    await expect.poll(() => page.locator('#upload-list li.failed').count(), PATIENTLY).toBe(1);
    expect(await page.locator('#upload-list li.failed').textContent()).toContain(
      'larger than what is left of your storage quota',
    );
    // The meter above the form follows, without a reload: three images, most of the MiB.
    await expect
      .poll(() => usage.textContent(), PATIENTLY)
      .toMatch(/You use: \d+ KiB of 1\.0 MiB · 3 images/);
    const meter = usage.getByRole('meter', { name: 'Storage used' });
    expect(Number(await meter.getAttribute('value'))).toBeGreaterThan(0.8 * 1024 * 1024);
    await page.screenshot({ path: screenshotPath('upload-small-quota-phone'), fullPage: true });
    await page.goto(`${origin}/`);
    expect(await page.locator('#grid li.thumb').count()).toBe(3);
    await context.close();
  });

  it.skipIf(!canMakeHeic)(
    'takes an iPhone HEIC photo chosen in the browser, which names no type for it',
    {
      timeout: BROWSER_TEST_TIMEOUT_MS,
    },
    async () => {
      const context = await newContext(browser, { viewport: { width: 390, height: 844 } });
      const page = await context.newPage();
      await signUpIn(page, origin, 'iphone@example.com');
      await page.goto(`${origin}/upload`);
      await expect.poll(() => page.getByText('…or drop images here').isVisible(), PATIENTLY).toBe(true);
      // As a desktop browser that does not know HEIC reports it: no type, only the name.
      await page.getByLabel('Choose images').setInputFiles({
        name: 'IMG_4032.HEIC',
        mimeType: '',
        buffer: await makeHeic(1200, 900, { r: 60, g: 160, b: 90 }),
      });
      await expect.poll(() => page.locator('#upload-list li.ok').count(), PATIENTLY).toBe(1);
      await page.goto(`${origin}/`);
      const thumb = page.locator('#grid li.thumb img').first();
      await expect
        .poll(
          () =>
            thumb.evaluate(async (el: HTMLImageElement) => {
              // With the grid's srcset, naturalWidth is in CSS pixels: measure the file the browser chose.
              if (!el.complete || !el.currentSrc) return 0;
              const file = new Image();
              file.src = el.currentSrc;
              await file.decode();
              return file.naturalWidth;
            }),
          PATIENTLY,
        )
        .toBe(400);
      await page.screenshot({ path: screenshotPath('heic-in-gallery-phone'), fullPage: true });
      await context.close();
    },
  );
});
