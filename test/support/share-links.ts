import { expect } from 'vitest';
import type { Client } from './app.js';
import { attr } from './html.js';

/**
 * The link a POST that made it shows once, read as a person would copy it: the POST redirects
 * (303) to a page that shows it at the top, and the same page again no longer does.
 */
export async function shownLink(client: Client, res: Response): Promise<string> {
  expect(res.status).toBe(303);
  const page = res.headers.get('location') ?? '';
  const html = await (await client.get(page)).text();
  const url = attr(html, '#new-share-link', 'value') ?? '';
  expect(url).toMatch(/\/s\/[a-z2-7]{32}$/);
  expect(await (await client.get(page)).text()).not.toContain('id="new-share-link"');
  return new URL(url).pathname;
}
