import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';

const HOUR = 3_600_000;
const thumbUrls = (html: string) => [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]);

describe('gallery pages kept between requests', () => {
  let t: TestApp;
  let admin: Client;
  let alice: Client;

  beforeAll(async () => {
    t = await makeTestApp();
    admin = t.client();
    await signUp(admin, 'admin@example.com');
    alice = await signUpWithRole(t, admin, 'alice@example.com', 'member');
    await t.seedImages((await t.user('alice@example.com')).id, 3);
  });
  afterAll(() => t.close());

  it('answers the same page again until something it shows changes, then shows the change at once', async () => {
    const first = await (await alice.get('/')).text();
    expect(await (await alice.get('/')).text()).toBe(first);
    const [newest] = await t.imageIdsNewestFirst((await t.user('alice@example.com')).id);

    expect((await alice.post(`/images/${newest}/rename`, { title: 'Harbour at dusk' })).status).toBe(303);
    expect(await (await alice.get('/')).text()).toContain('Harbour at dusk');

    t.advance(HOUR);
    const nextHour = await (await alice.get('/')).text();
    expect(thumbUrls(nextHour)).toHaveLength(3);
    expect(thumbUrls(nextHour)).not.toEqual(thumbUrls(first));

    const id = (await t.user('alice@example.com')).id;
    expect((await admin.post(`/admin/users/${id}/role`, { role: 'viewer' })).status).toBe(303);
    const asViewer = await (await alice.get('/')).text();
    expect(asViewer).not.toContain('Delete selected');
    expect(asViewer).not.toContain('href="/shares"');
  });

  it("never answers one person's page to another who opens the same gallery", async () => {
    const id = (await t.user('alice@example.com')).id;
    const asAdmin = await (await admin.get(`/users/${id}`)).text();
    const asAlice = await (await alice.get('/')).text();
    expect(asAdmin).toContain('<span class="who">admin@example.com');
    expect(asAdmin).toContain('Gallery of alice@example.com');
    expect(asAlice).toContain('<span class="who">alice@example.com');
    expect(asAlice).not.toContain('admin@example.com');
  });
});
