import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { all, attr, attrs } from './support/html.js';
import { makeJpeg } from './support/images.js';
import { upload } from './support/uploads.js';

/**
 * Where the image page's previous and next links go (undefined at either end), opened from the grid
 * `query` names (`?order=taken`, `?album=…`); every link must carry that query on.
 */
async function neighboursOn(client: Client, id: string, query = '') {
  const res = await client.get(`/images/${id}${query}`);
  expect(res.status).toBe(200);
  const html = await res.text();
  const idOf = (rel: string) => {
    const href = attr(html, `.image-nav a[rel="${rel}"]`, 'href');
    if (href === undefined) return undefined;
    const url = new URL(href, 'http://x');
    expect(url.search).toBe(query);
    return url.pathname.replace('/images/', '');
  };
  return { previous: idOf('prev'), next: idOf('next') };
}

/** Where the page's "← Back to …" link goes. */
const backHref = (html: string) =>
  all(html, 'a')
    .find((a) => a.textContent?.startsWith('← Back'))
    ?.getAttribute('href');

/** Follows the links from `from` until there is none: the ids in the order the pages show them. */
async function walk(client: Client, from: string, rel: 'previous' | 'next', query = '') {
  const seen = [from];
  for (let id: string | undefined = from; id; ) {
    id = (await neighboursOn(client, id, query))[rel];
    if (id) seen.push(id);
    if (seen.length > 50) throw new Error('the links go round in a circle');
  }
  return seen;
}

describe('browsing images one by one (the viewer and the image page)', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;
  let bob: Client;
  let carol: Client;
  let aliceImages: string[];

  const share = (ids: string[]) =>
    t.services.database.q.updateTable('images').set({ is_shared: 1 }).where('id', 'in', ids).execute();

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    bob = await signUpWithRole(t, admin, 'bob@example.com', 'member');
    carol = await signUpWithRole(t, admin, 'carol@example.com', 'member');
    // Seven images, every third sharing its upload time with a neighbour: ties are ordered by id.
    const aliceId = (await t.user('alice@example.com')).id;
    await t.seedImages(aliceId, 7);
    aliceImages = await t.imageIdsNewestFirst(aliceId);
    t.advance(60_000);
    await t.seedImages((await t.user('carol@example.com')).id, 2);
  });
  afterAll(() => t.close());

  it("walks the owner's gallery newest first with next, and back with previous, ties included", async () => {
    const newest = aliceImages[0] as string;
    const oldest = aliceImages.at(-1) as string;
    expect(await walk(alice, newest, 'next')).toEqual(aliceImages);
    expect(await walk(alice, oldest, 'previous')).toEqual([...aliceImages].reverse());
    // The ends have one link only.
    expect(await neighboursOn(alice, newest)).toEqual({ previous: undefined, next: aliceImages[1] });
    expect(await neighboursOn(alice, oldest)).toEqual({ previous: aliceImages.at(-2), next: undefined });
  });

  it('has no links at all for an image alone in its gallery', async () => {
    const dave = await signUpWithRole(t, admin, 'dave@example.com', 'member');
    const id = await upload(dave, await makeJpeg(300, 200), 'alone.jpg');
    const html = await (await dave.get(`/images/${id}`)).text();
    expect(all(html, '.image-nav')).toHaveLength(0);
  });

  it("shows an admin the owner's whole gallery, private images included", async () => {
    expect(await walk(admin, aliceImages[0] as string, 'next')).toEqual(aliceImages);
  });

  it('steps through the shared images only, across owners, for someone else', async () => {
    const carolImages = await t.imageIdsNewestFirst((await t.user('carol@example.com')).id);
    // Alice's 2nd and 5th, and Carol's newer one; Carol's were seeded later, so hers come first.
    const shown = [aliceImages[1], aliceImages[4], carolImages[0]] as string[];
    await share(shown);
    const expected = [carolImages[0], aliceImages[1], aliceImages[4]];
    expect(await walk(bob, expected[0] as string, 'next')).toEqual(expected);
    expect(await walk(bob, expected[2] as string, 'previous')).toEqual([...expected].reverse());
    // Alice herself still steps through her own gallery from a shared image of hers.
    expect(await neighboursOn(alice, aliceImages[1] as string)).toEqual({
      previous: aliceImages[0],
      next: aliceImages[2],
    });
  });

  it('follows the timeline when opened from it, and links its cards there', async () => {
    // Taken in the reverse of the upload order, two on one date (ties by id), one with no date
    // (its upload time counts: the newest).
    const taken = Date.UTC(2020, 0, 1);
    const dates = [taken, taken + 1000, taken + 1000, taken + 3000, taken + 4000, taken + 5000, null];
    for (const [i, id] of aliceImages.entries())
      await t.services.database.q
        .updateTable('images')
        .set({ taken_at: dates[i] ?? null })
        .where('id', '=', id)
        .execute();
    const html = await (await alice.get('/?order=taken')).text();
    const timeline = attrs(html, '#grid a.thumb-link', 'data-image-id');
    expect(timeline).not.toEqual(aliceImages);
    expect(attrs(html, '#grid a.thumb-link', 'href')).toEqual(
      timeline.map((id) => `/images/${id}?order=taken`),
    );
    const first = timeline[0] as string;
    expect(await walk(alice, first, 'next', '?order=taken')).toEqual(timeline);
    expect(await walk(alice, timeline.at(-1) as string, 'previous', '?order=taken')).toEqual(
      [...timeline].reverse(),
    );
    // Back goes to the timeline; without the query, the same page steps in upload order.
    const page = await (await alice.get(`/images/${first}?order=taken`)).text();
    expect(backHref(page)).toBe('/?order=taken');
    expect(await walk(alice, aliceImages[0] as string, 'next')).toEqual(aliceImages);
  });

  it('steps through an album only when opened from it, and only for those who may see it', async () => {
    const members = [aliceImages[1], aliceImages[3], aliceImages[6]] as string[];
    const res = await alice.postForm('/albums', [
      ['name', 'Three'],
      ...members.map((id) => ['ids', id] as [string, string]),
    ]);
    expect(res.status).toBe(303);
    const album = new URL(res.headers.get('location') as string, 'http://x').pathname
      .split('/')
      .pop() as string;
    const albumHtml = await (await alice.get(`/albums/${album}`)).text();
    expect(attrs(albumHtml, '#grid a.thumb-link', 'href')).toEqual(
      members.map((id) => `/images/${id}?album=${album}`),
    );
    expect(await walk(alice, members[0] as string, 'next', `?album=${album}`)).toEqual(members);
    const inAlbum = await (await alice.get(`/images/${members[0]}?album=${album}`)).text();
    expect(backHref(inAlbum)).toBe(`/albums/${album}`);
    expect(await walk(admin, members[2] as string, 'previous', `?album=${album}`)).toEqual(
      [...members].reverse(),
    );
    // An image not in the album, or a stranger to the album (Bob sees Alice's shared images), gets
    // the grid's own order, and links that say nothing of the album.
    const outside = await (await alice.get(`/images/${aliceImages[2]}?album=${album}`)).text();
    expect(attrs(outside, '.image-nav a', 'href')).toEqual([
      `/images/${aliceImages[1]}`,
      `/images/${aliceImages[3]}`,
    ]);
    const stranger = await (await bob.get(`/images/${aliceImages[1]}?album=${album}`)).text();
    expect(attrs(stranger, '.image-nav a', 'href').every((href) => !href.includes('album'))).toBe(true);
  });

  it("answers 404 for someone else's private image, with no neighbours to learn from", async () => {
    const res = await bob.get(`/images/${aliceImages[0]}`);
    expect(res.status).toBe(404);
    expect(all(await res.text(), '.image-nav a')).toHaveLength(0);
  });

  it('gives ready cards what the viewer needs, and processing ones only a link to their page', async () => {
    await t.services.database.q
      .updateTable('images')
      .set({ state: 'processing' })
      .where('id', '=', aliceImages[2] as string)
      .execute();
    // Named: alice chose the date-taken order above, which her bare gallery address now opens in.
    const html = await (await alice.get('/?order=uploaded')).text();
    const links = all(html, '#grid a.thumb-link');
    expect(links.map((a) => a.getAttribute('data-image-id'))).toEqual(aliceImages);
    const ready = links.filter((a) => a.getAttribute('data-pswp-src'));
    expect(ready).toHaveLength(aliceImages.length - 1);
    const processing = links.find((a) => a.getAttribute('data-image-id') === aliceImages[2]);
    expect(processing?.getAttribute('data-pswp-src')).toBeUndefined();
    expect(processing?.getAttribute('href')).toBe(`/images/${aliceImages[2]}`);
    // The display copy: its own signed URL, not the thumbnail's.
    const first = ready[0];
    expect(first?.getAttribute('data-pswp-src')).toContain('/display/');
    expect(first?.getAttribute('data-pswp-src')).not.toBe(first?.querySelector('img')?.getAttribute('src'));
  });

  it('sizes a large image as its 1600-pixel display copy, which the viewer loads', async () => {
    const id = await upload(carol, await makeJpeg(2400, 1200), 'wide.jpg');
    await t.settle();
    const html = await (await carol.get('/')).text();
    const link = all(html, `#grid a[data-image-id="${id}"]`)[0];
    expect(link?.getAttribute('data-pswp-width')).toBe('1600');
    expect(link?.getAttribute('data-pswp-height')).toBe('800');
    const display = await fetch(link?.getAttribute('data-pswp-src') as string);
    expect(display.status).toBe(200);
    expect(display.headers.get('content-type')).toBe('image/webp');
  });
});
