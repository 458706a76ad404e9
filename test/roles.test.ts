import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, signUp, signUpWithRole, type TestApp } from './support/app.js';

const ACTORS = ['logged-out', 'viewer', 'owner', 'other-member', 'admin'] as const;
type Actor = (typeof ACTORS)[number];

interface Fixture {
  /** a private image of the owner (a member) */
  image: string;
  /** an image of the owner that is visible to all signed-in users */
  shared: string;
  ownerId: string;
  /** an account nobody here is, for admin actions on users */
  targetUserId: string;
  /** a share link of the owner's, made fresh for each check */
  linkId: string;
  token: string;
}

interface Check {
  name: string;
  request: (client: Client, f: Fixture) => Promise<Response>;
  allowed: Actor[];
}

const signedIn: Actor[] = ['viewer', 'owner', 'other-member', 'admin'];
const uploaders: Actor[] = ['owner', 'other-member', 'admin'];
const ownerOrAdmin: Actor[] = ['owner', 'admin'];
const adminOnly: Actor[] = ['admin'];
const everyone: Actor[] = [...ACTORS];

const get = (path: (f: Fixture) => string) => (c: Client, f: Fixture) => c.get(path(f));
const post =
  (path: (f: Fixture) => string, fields: (f: Fixture) => [string, string][] = () => []) =>
  (c: Client, f: Fixture) =>
    c.postForm(path(f), fields(f));

/** Every route of the app, with who may use it. A route missing here is a route nobody reviewed. */
const CHECKS: Check[] = [
  { name: 'GET /healthz', request: get(() => '/healthz'), allowed: everyone },
  { name: 'GET /', request: get(() => '/'), allowed: signedIn },
  { name: 'GET /shared', request: get(() => '/shared'), allowed: signedIn },
  { name: 'GET /account/password', request: get(() => '/account/password'), allowed: signedIn },
  { name: 'GET /upload', request: get(() => '/upload'), allowed: uploaders },
  {
    name: 'POST /uploads/presign',
    request: (c) => c.postJson('/uploads/presign', { name: 'x.png' }),
    allowed: uploaders,
  },
  { name: 'GET /images/:id (private)', request: get((f) => `/images/${f.image}`), allowed: ownerOrAdmin },
  { name: 'GET /images/:id (shared)', request: get((f) => `/images/${f.shared}`), allowed: signedIn },
  {
    name: 'GET /images/:id/download (private)',
    request: get((f) => `/images/${f.image}/download`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'GET /images/:id/download (shared)',
    request: get((f) => `/images/${f.shared}/download`),
    allowed: signedIn,
  },
  { name: 'GET /images/:id/delete', request: get((f) => `/images/${f.image}/delete`), allowed: ownerOrAdmin },
  {
    name: 'GET /images/:id/replace',
    request: get((f) => `/images/${f.image}/replace`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'GET /images/:id/replace (shared)',
    request: get((f) => `/images/${f.shared}/replace`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/rename (private)',
    request: post(
      (f) => `/images/${f.image}/rename`,
      () => [['title', 'new title']],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/rename (shared)',
    request: post(
      (f) => `/images/${f.shared}/rename`,
      () => [['title', 'new title']],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/visibility',
    request: post(
      (f) => `/images/${f.image}/visibility`,
      () => [['shared', '1']],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/delete',
    request: post((f) => `/images/${f.image}/delete`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/delete (shared)',
    request: post((f) => `/images/${f.shared}/delete`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/delete',
    request: post(
      () => '/images/delete',
      (f) => [
        ['ids', f.image],
        ['confirm', 'yes'],
      ],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/shares',
    request: post(
      (f) => `/images/${f.image}/shares`,
      () => [['expiry', '1d']],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /shares/new',
    request: post(
      () => '/shares/new',
      (f) => [['ids', f.image]],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /shares',
    request: post(
      () => '/shares',
      (f) => [
        ['ids', f.image],
        ['expiry', '1d'],
      ],
    ),
    allowed: ownerOrAdmin,
  },
  { name: 'GET /shares', request: get(() => '/shares'), allowed: uploaders },
  {
    name: 'POST /shares/:id/revoke',
    request: post((f) => `/shares/${f.linkId}/revoke`),
    allowed: ownerOrAdmin,
  },
  { name: 'GET /s/:token', request: get((f) => `/s/${f.token}`), allowed: everyone },
  { name: 'GET /users/:id', request: get((f) => `/users/${f.ownerId}`), allowed: adminOnly },
  { name: 'GET /admin', request: get(() => '/admin'), allowed: adminOnly },
  { name: 'GET /admin/users/:id', request: get((f) => `/admin/users/${f.targetUserId}`), allowed: adminOnly },
  {
    name: 'POST /admin/users/:id/role',
    request: post(
      (f) => `/admin/users/${f.targetUserId}/role`,
      () => [['role', 'member']],
    ),
    allowed: adminOnly,
  },
  {
    name: 'POST /admin/users/:id/quota',
    request: post(
      (f) => `/admin/users/${f.targetUserId}/quota`,
      () => [['images', '5']],
    ),
    allowed: adminOnly,
  },
  {
    name: 'POST /admin/users/:id/enable',
    request: post((f) => `/admin/users/${f.targetUserId}/enable`),
    allowed: adminOnly,
  },
  { name: 'GET /admin/invites', request: get(() => '/admin/invites'), allowed: adminOnly },
  {
    name: 'POST /admin/invites',
    request: post(
      () => '/admin/invites',
      () => [['role', 'viewer']],
    ),
    allowed: adminOnly,
  },
  { name: 'GET /admin/changes', request: get(() => '/admin/changes'), allowed: adminOnly },
  { name: 'GET /admin/audit', request: get(() => '/admin/audit'), allowed: adminOnly },
  { name: 'GET /admin/audit.csv', request: get(() => '/admin/audit.csv'), allowed: adminOnly },
];

/** Refused means: sent to log in, forbidden, or told the thing does not exist. */
function wasAllowed(res: Response): boolean {
  if (res.status === 403 || res.status === 404 || res.status === 401) return false;
  if (res.status === 303 && (res.headers.get('location') ?? '').startsWith('/login')) return false;
  if (res.status >= 200 && res.status < 400) return true;
  throw new Error(`unexpected status ${res.status}`);
}

describe('the role matrix', () => {
  let t: TestApp;
  const clients = {} as Record<Actor, Client>;
  let ownerId: string;

  beforeAll(async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    clients.admin = admin;
    clients.owner = await signUpWithRole(t, admin, 'owner@example.com', 'member');
    clients['other-member'] = await signUpWithRole(t, admin, 'other@example.com', 'member');
    clients.viewer = await signUpWithRole(t, admin, 'viewer@example.com', 'viewer');
    clients['logged-out'] = t.client();
    await signUpWithRole(t, admin, 'target@example.com', 'viewer');
    ownerId = t.user('owner@example.com').id;
  });
  afterAll(() => t.close());

  /** Fresh images and a fresh link for every check, so one actor's delete cannot decide the next one's answer. */
  async function fixture(): Promise<Fixture> {
    const before = new Set(t.imageIdsNewestFirst(ownerId));
    t.seedImages(ownerId, 2);
    const [image, shared] = t.imageIdsNewestFirst(ownerId).filter((id) => !before.has(id)) as [
      string,
      string,
    ];
    t.services.db.prepare('UPDATE images SET is_shared = 1 WHERE id = ?').run(shared);
    const owner = t.user('owner@example.com');
    const { token, link } = await t.services.shares.create(owner, [image], {
      expiry: '1d',
      allowDownload: false,
    });
    return { image, shared, ownerId, targetUserId: t.user('target@example.com').id, linkId: link.id, token };
  }

  it('allows exactly the listed roles on every route', async () => {
    const mismatches: string[] = [];
    for (const check of CHECKS) {
      const allowedNow: Actor[] = [];
      for (const actor of ACTORS) {
        const res = await check.request(clients[actor], await fixture());
        if (wasAllowed(res)) allowedNow.push(actor);
      }
      if (allowedNow.join() !== check.allowed.join())
        mismatches.push(`${check.name}: allowed ${allowedNow.join()} (expected ${check.allowed.join()})`);
    }
    expect(mismatches).toEqual([]);
  });

  it('changes nothing when a refused actor tries a change', async () => {
    const f = await fixture();
    for (const actor of ['viewer', 'other-member', 'logged-out'] as const) {
      await clients[actor].post(`/images/${f.image}/rename`, { title: 'hijacked' });
      await clients[actor].post(`/images/${f.shared}/delete`);
      await clients[actor].post(`/images/${f.image}/visibility`, { shared: '1' });
      await clients[actor].post(`/shares/${f.linkId}/revoke`);
    }
    expect(t.count('images', `id IN ('${f.image}', '${f.shared}')`)).toBe(2);
    expect(t.count('images', "title = 'hijacked'")).toBe(0);
    expect(t.count('images', `id = '${f.image}' AND is_shared = 0`)).toBe(1);
    expect(t.count('share_links', `id = '${f.linkId}' AND revoked_at IS NULL`)).toBe(1);
  });
});
