/// <reference lib="dom" />
// Regenerates docs/gallery.png: a real server on a temp dir, a few generated photos uploaded
// through the JavaScript path, and Chromium's screenshot of the gallery.
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { startAppServer } from '../test/support/server.js';

const server = await startAppServer({ SIGNUP: 'invite' });
const { origin } = server;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  await page.goto(`${origin}/signup`);
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByLabel('Password').fill('a long enough password');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL(`${origin}/`);
  const scenes = [
    ['Harbour at dawn', [250, 140, 90], [40, 60, 120]],
    ['Pine forest', [30, 90, 50], [180, 210, 140]],
    ['Desert road', [230, 180, 110], [120, 70, 40]],
    ['Glacier lake', [120, 200, 230], [20, 60, 90]],
    ['Night market', [40, 20, 70], [240, 120, 60]],
    ['Lavender field', [150, 110, 200], [240, 230, 190]],
    ['Old town', [200, 120, 90], [60, 50, 50]],
    ['Surf', [20, 120, 170], [240, 240, 230]],
  ] as const;
  for (const [title, [r1, g1, b1], [r2, g2, b2]] of scenes) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="rgb(${r1},${g1},${b1})"/><stop offset="1" stop-color="rgb(${r2},${g2},${b2})"/></linearGradient></defs><rect width="1200" height="800" fill="url(#g)"/><circle cx="${300 + title.length * 40}" cy="260" r="120" fill="rgba(255,255,255,0.35)"/></svg>`;
    const jpeg = await sharp(Buffer.from(svg)).jpeg().toBuffer();
    await page.evaluate(
      // No named helpers in here: tsx would wrap them in a __name() the page does not have.
      async ({ name, b64 }) => {
        const headers = { 'Content-Type': 'application/json' };
        const presign = await fetch('/uploads/presign', {
          method: 'POST',
          headers,
          body: JSON.stringify({ name }),
        });
        const policy = (await presign.json()) as { url: string; key: string; fields: Record<string, string> };
        const form = new FormData();
        for (const [k, v] of Object.entries(policy.fields)) form.append(k, v);
        form.append('Content-Type', 'image/jpeg');
        form.append('file', new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]), name);
        await fetch(policy.url, { method: 'POST', body: form });
        await fetch('/uploads/complete', {
          method: 'POST',
          headers,
          body: JSON.stringify({ key: policy.key }),
        });
      },
      { name: `${title}.jpg`, b64: jpeg.toString('base64') },
    );
  }
  await page.goto(`${origin}/`);
  await page.waitForFunction(() =>
    Array.from(document.images).every((i) => i.complete && i.naturalWidth > 0),
  );
  await page.screenshot({ path: 'docs/gallery.png' });
  console.log('wrote docs/gallery.png');
} finally {
  await browser.close();
  await server.close();
}
