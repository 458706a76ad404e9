import { inspectRoutes } from 'hono/dev';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from './support/app.js';
import { makeTestApp, PASSWORD, signUp, signUpWithRole, type TestApp } from './support/app.js';
import { hiddenForm } from './support/html.js';
import { makePng } from './support/images.js';
import { type Policy, postToBucket } from './support/uploads.js';

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
  /** an album of the owner's holding `image`, and the token of a link showing it */
  album: string;
  albumToken: string;
  /** an upload of the owner's that reached the bucket and waits to be completed */
  pendingUpload(): Promise<string>;
  /** the key of an upload in parts of the owner's, its one part sent; one for each use */
  partsUpload(use: 'url' | 'finish'): Promise<string>;
  /** a guest upload link of the owner's, in force */
  guestLink(): Promise<{ id: string; token: string }>;
  /** an open invite */
  invite(): Promise<{ id: string; token: string }>;
  /** a link of the owner's that asks for SHARE_PASSWORD */
  passwordLink(): Promise<string>;
  /** an account that exists to be deleted */
  doomedUser(): Promise<{ id: string; email: string }>;
  /** a second session of the same actor (a fresh client when logged out), so logging out spares the first */
  newSession(): Promise<Client>;
  /** the id of another session of the owner's (another browser of theirs) */
  ownerSession(): Promise<string>;
  /** the id of a personal S3 key of the owner's, made fresh for each check */
  ownerKey(): Promise<string>;
  /** puts a real file at `image`'s original key (seeded rows have none) */
  storeOriginal(): Promise<void>;
  /** moves `image` to the owner's trash; when it went there (what Undo names) */
  trashed(): Promise<number>;
}

interface Check {
  /** the route as the app registers it ("GET /images/:id"), then the case in brackets if any */
  name: string;
  request: (client: Client, f: Fixture) => Promise<Response>;
  allowed: Actor[];
  /** whether a response means the actor was let through, when it is not `wasAllowed` */
  judge?: (res: Response) => boolean;
}

const SHARE_PASSWORD = 'a share password';
const routeOf = (check: Check) => check.name.replace(/ \(.*\)$/, '');
let signups = 0;

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

/**
 * Every route of the app, with who may use it. A route missing here is a route nobody reviewed:
 * the first test fails on it. Requests that would replace the actor's own session cookie (log in,
 * sign up) go from a clone of the actor's client.
 */
const CHECKS: Check[] = [
  { name: 'GET /vendor/htmx.min.js', request: get(() => '/vendor/htmx.min.js'), allowed: everyone },
  { name: 'GET /vendor/thumbhash.js', request: get(() => '/vendor/thumbhash.js'), allowed: everyone },
  {
    name: 'GET /vendor/photoswipe-lightbox.esm.min.js',
    request: get(() => '/vendor/photoswipe-lightbox.esm.min.js'),
    allowed: everyone,
  },
  {
    name: 'GET /vendor/photoswipe.esm.min.js',
    request: get(() => '/vendor/photoswipe.esm.min.js'),
    allowed: everyone,
  },
  {
    name: 'GET /vendor/photoswipe.css',
    request: get(() => '/vendor/photoswipe.css'),
    allowed: everyone,
  },
  { name: 'GET /healthz', request: get(() => '/healthz'), allowed: everyone },
  {
    name: 'GET /signup',
    request: async (c, f) => c.get(`/signup?invite=${(await f.invite()).token}`),
    allowed: everyone,
  },
  {
    name: 'POST /signup',
    request: async (c, f) =>
      c.clone().post('/signup', {
        email: `signup-${++signups}@example.com`,
        password: PASSWORD,
        invite: (await f.invite()).token,
      }),
    allowed: everyone,
  },
  { name: 'GET /login', request: get(() => '/login'), allowed: everyone },
  {
    name: 'POST /login',
    request: (c) => c.clone().post('/login', { email: 'login@example.com', password: PASSWORD }),
    allowed: everyone,
  },
  {
    name: 'POST /logout',
    request: async (_c, f) => (await f.newSession()).post('/logout'),
    allowed: everyone,
    judge: (res) => res.status === 303 && res.headers.get('location') === '/login?loggedOut=1',
  },
  { name: 'GET /account', request: get(() => '/account'), allowed: signedIn },
  // An external bucket's events: off in this app (no topic, no token), so 404 for everyone; their
  // own proof (a signature, a token) is tested in bucket-events.test.ts.
  { name: 'POST /events/s3/sns', request: post(() => '/events/s3/sns'), allowed: [] },
  { name: 'POST /events/s3/minio', request: post(() => '/events/s3/minio'), allowed: [] },
  {
    name: 'POST /account/keys',
    request: post(
      () => '/account/keys',
      () => [
        ['name', 'matrix'],
        ['scope', 'read'],
      ],
    ),
    allowed: uploaders,
  },
  {
    name: 'POST /account/keys (bucket-wide)',
    request: post(
      () => '/account/keys',
      () => [
        ['name', 'matrix'],
        ['scope', 'bucket'],
      ],
    ),
    allowed: adminOnly,
  },
  // With no key just made, the account page; the key's own page is its maker's alone
  // (access-keys.test.ts gives another person the cookie that carries it).
  { name: 'GET /account/keys/new', request: get(() => '/account/keys/new'), allowed: signedIn },
  {
    name: 'POST /account/keys/:id/revoke',
    request: async (c, f) => c.post(`/account/keys/${await f.ownerKey()}/revoke`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /account/sessions/:id/end',
    request: async (c, f) => c.post(`/account/sessions/${await f.ownerSession()}/end`),
    allowed: ['owner'],
  },
  {
    // From a second browser of the actor's, which then stands in for the first (now signed out).
    name: 'POST /account/sessions/end-others',
    request: async (c, f) => {
      const other = await f.newSession();
      const res = await other.post('/account/sessions/end-others');
      if (res.status === 303 && res.headers.get('location')?.startsWith('/account')) {
        for (const [name, value] of other.cookies) c.cookies.set(name, value);
      }
      return res;
    },
    allowed: signedIn,
  },
  { name: 'GET /account/password', request: get(() => '/account/password'), allowed: signedIn },
  {
    // The same password again: the actor's session is kept, the others of that account end.
    name: 'POST /account/password',
    request: post(
      () => '/account/password',
      () => [
        ['current', PASSWORD],
        ['password', PASSWORD],
      ],
    ),
    allowed: signedIn,
  },
  { name: 'GET /', request: get(() => '/'), allowed: signedIn },
  { name: 'GET /shared', request: get(() => '/shared'), allowed: signedIn },
  { name: 'GET /upload', request: get(() => '/upload'), allowed: uploaders },
  { name: 'GET /upload/usage', request: get(() => '/upload/usage'), allowed: uploaders },
  {
    name: 'POST /uploads/presign',
    request: (c) => c.postJson('/uploads/presign', { name: 'x.png', size: 100 }),
    allowed: uploaders,
  },
  {
    name: 'GET /uploads/complete',
    request: async (c, f) => c.get(`/uploads/complete?key=${encodeURIComponent(await f.pendingUpload())}`),
    allowed: ['owner'],
  },
  {
    name: 'POST /uploads/complete',
    request: async (c, f) => c.postJson('/uploads/complete', { key: await f.pendingUpload() }),
    allowed: ['owner'],
  },
  {
    name: 'POST /uploads/parts/start',
    request: (c) => c.postJson('/uploads/parts/start', { name: 'x.png', size: 100, type: 'image/png' }),
    allowed: uploaders,
  },
  {
    name: 'POST /uploads/parts/url',
    request: async (c, f) => c.postJson('/uploads/parts/url', { key: await f.partsUpload('url'), part: 1 }),
    allowed: ['owner'],
  },
  {
    name: 'POST /uploads/parts/finish',
    request: async (c, f) => c.postJson('/uploads/parts/finish', { key: await f.partsUpload('finish') }),
    allowed: ['owner'],
  },
  {
    name: 'POST /uploads/abandon',
    request: async (c, f) => c.postJson('/uploads/abandon', { key: await f.pendingUpload() }),
    allowed: ['owner'],
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
    name: 'GET /images/:id/thumb (private)',
    request: get((f) => `/images/${f.image}/thumb`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'GET /images/:id/thumb (shared)',
    request: get((f) => `/images/${f.shared}/thumb`),
    allowed: signedIn,
  },
  {
    name: 'POST /images/:id/retry',
    request: post((f) => `/images/${f.image}/retry`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /images/:id/retry (shared)',
    request: post((f) => `/images/${f.shared}/retry`),
    allowed: ownerOrAdmin,
  },
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
    name: 'POST /images/:id/restore',
    request: async (c, f) => {
      await f.trashed();
      return c.postForm(`/images/${f.image}/restore`, []);
    },
    allowed: ownerOrAdmin,
  },
  { name: 'GET /trash', request: get(() => '/trash'), allowed: uploaders },
  { name: 'GET /users/:id/trash', request: get((f) => `/users/${f.ownerId}/trash`), allowed: adminOnly },
  {
    name: 'POST /trash/restore',
    request: async (c, f) => {
      await f.trashed();
      return c.postForm('/trash/restore', [['ids', f.image]]);
    },
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /trash/delete',
    request: async (c, f) => {
      await f.trashed();
      return c.postForm('/trash/delete', [
        ['ids', f.image],
        ['confirm', 'yes'],
      ]);
    },
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /trash/empty',
    request: async (c, f) => {
      await f.trashed();
      return c.postForm('/trash/empty', [
        ['owner', f.ownerId],
        ['confirm', 'yes'],
      ]);
    },
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /trash/undo',
    request: async (c, f) => {
      const at = await f.trashed();
      return c.postForm('/trash/undo', [
        ['owner', f.ownerId],
        ['at', String(at)],
      ]);
    },
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
  { name: 'GET /guest-links', request: get(() => '/guest-links'), allowed: uploaders },
  {
    name: 'POST /guest-links',
    request: post(
      () => '/guest-links',
      () => [
        ['label', 'Roles'],
        ['expiry', '1d'],
      ],
    ),
    allowed: uploaders,
  },
  {
    name: 'GET /guest-links/:id',
    request: async (c, f) => c.get(`/guest-links/${(await f.guestLink()).id}`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /guest-links/:id/revoke',
    request: async (c, f) => c.postForm(`/guest-links/${(await f.guestLink()).id}/revoke`, []),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /guest-links/:id/turn-on',
    request: async (c, f) => c.postForm(`/guest-links/${(await f.guestLink()).id}/turn-on`, []),
    allowed: ownerOrAdmin,
  },
  {
    name: 'GET /u/:token',
    request: async (c, f) => c.get(`/u/${(await f.guestLink()).token}`),
    allowed: everyone,
  },
  {
    // The gate of a link with a password or names: this link has neither, so it only sends back.
    name: 'POST /u/:token',
    request: async (c, f) => {
      const path = `/u/${(await f.guestLink()).token}`;
      await c.get(path);
      return c.postForm(path, [['name', 'Ana']]);
    },
    allowed: everyone,
  },
  {
    // A script's policy: the visit's cookie comes from the page, opened first.
    name: 'POST /u/:token/presign',
    request: async (c, f) => {
      const path = `/u/${(await f.guestLink()).token}`;
      await c.get(path);
      return c.postJson(`${path}/presign`, { name: 'g.png', size: 100 });
    },
    allowed: everyone,
  },
  {
    name: 'POST /u/:token/complete',
    request: async (c, f) => {
      const path = `/u/${(await f.guestLink()).token}`;
      await c.get(path);
      const policy = (await (await c.postJson(`${path}/presign`, { name: 'g.png' })).json()) as Policy;
      await postToBucket(policy, await makePng(40, 30), 'image/png', 'g.png');
      return c.postJson(`${path}/complete`, { key: policy.key });
    },
    allowed: everyone,
  },
  {
    name: 'POST /u/:token/abandon',
    request: async (c, f) => {
      const path = `/u/${(await f.guestLink()).token}`;
      await c.get(path);
      const policy = (await (await c.postJson(`${path}/presign`, { name: 'g.png' })).json()) as Policy;
      return c.postJson(`${path}/abandon`, { key: policy.key });
    },
    allowed: everyone,
  },
  {
    // Each actor's browser completes its own visit's upload (the page's form, then the bucket's redirect).
    name: 'GET /u/:token/complete',
    request: async (c, f) => {
      const path = `/u/${(await f.guestLink()).token}`;
      const first = await c.get(path); // a first visit gets its cookie, then the page
      const opened = first.status === 303 ? await c.get(first.headers.get('location') as string) : first;
      const { action, fields } = hiddenForm(await opened.text(), '#upload-form');
      const body = new FormData();
      for (const [k, v] of fields) body.append(k, k === 'Content-Type' ? 'image/png' : v);
      const picture = await makePng(40, 30);
      body.append('file', new Blob([new Uint8Array(picture)], { type: 'image/png' }), 'guest.png');
      const stored = await fetch(action as string, { method: 'POST', body, redirect: 'manual' });
      const back = new URL(stored.headers.get('location') ?? 'http://x/');
      return c.get(`${back.pathname}${back.search}`);
    },
    allowed: everyone,
  },
  {
    name: 'GET /s/:token/download/:id',
    request: async (c, f) => {
      await f.storeOriginal();
      return c.get(`/s/${f.token}/download/${f.image}`);
    },
    allowed: everyone,
  },
  {
    name: 'POST /s/:token',
    request: async (c, f) => c.post(`/s/${await f.passwordLink()}`, { password: SHARE_PASSWORD }),
    allowed: everyone,
  },
  { name: 'GET /s/:token (album)', request: get((f) => `/s/${f.albumToken}`), allowed: everyone },
  { name: 'GET /albums', request: get(() => '/albums'), allowed: uploaders },
  {
    name: 'POST /albums',
    request: post(
      () => '/albums',
      () => [['name', 'New album']],
    ),
    allowed: uploaders,
  },
  {
    name: 'POST /albums (with images)',
    request: post(
      () => '/albums',
      (f) => [
        ['name', 'New album'],
        ['ids', f.image],
      ],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /albums/add',
    request: post(
      () => '/albums/add',
      (f) => [['ids', f.image]],
    ),
    allowed: ownerOrAdmin,
  },
  { name: 'GET /albums/:id', request: get((f) => `/albums/${f.album}`), allowed: ownerOrAdmin },
  {
    name: 'POST /albums/:id/rename',
    request: post(
      (f) => `/albums/${f.album}/rename`,
      () => [['name', 'Renamed']],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /albums/:id/delete',
    request: post((f) => `/albums/${f.album}/delete`),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /albums/:id/images',
    request: post(
      (f) => `/albums/${f.album}/images`,
      (f) => [['ids', f.shared]],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /albums/:id/remove',
    request: post(
      (f) => `/albums/${f.album}/remove`,
      (f) => [['ids', f.image]],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /albums/:id/cover',
    request: post(
      (f) => `/albums/${f.album}/cover`,
      (f) => [['ids', f.image]],
    ),
    allowed: ownerOrAdmin,
  },
  {
    name: 'POST /albums/:id/shares',
    request: post(
      (f) => `/albums/${f.album}/shares`,
      () => [['expiry', '1d']],
    ),
    allowed: ownerOrAdmin,
  },
  { name: 'GET /users/:id/albums', request: get((f) => `/users/${f.ownerId}/albums`), allowed: adminOnly },
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
    name: 'POST /admin/users/:id/disable',
    request: post((f) => `/admin/users/${f.targetUserId}/disable`),
    allowed: adminOnly,
  },
  {
    name: 'POST /admin/users/:id/enable',
    request: post((f) => `/admin/users/${f.targetUserId}/enable`),
    allowed: adminOnly,
  },
  {
    name: 'POST /admin/users/:id/delete',
    request: async (c, f) => {
      const doomed = await f.doomedUser();
      return c.post(`/admin/users/${doomed.id}/delete`, { confirm: doomed.email });
    },
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
  {
    name: 'POST /admin/invites/:id/revoke',
    request: async (c, f) => c.post(`/admin/invites/${(await f.invite()).id}/revoke`),
    allowed: adminOnly,
  },
  { name: 'GET /admin/changes', request: get(() => '/admin/changes'), allowed: adminOnly },
  { name: 'GET /admin/audit', request: get(() => '/admin/audit'), allowed: adminOnly },
  { name: 'GET /admin/audit.csv', request: get(() => '/admin/audit.csv'), allowed: adminOnly },
  { name: 'GET /admin/processing', request: get(() => '/admin/processing'), allowed: adminOnly },
];

/** Refused means: sent to log in, forbidden, or told the thing does not exist. */
function wasAllowed(res: Response): boolean {
  if (res.status === 403 || res.status === 404 || res.status === 401) return false;
  if (res.status === 303 && (res.headers.get('location') ?? '').startsWith('/login')) return false;
  if (res.status >= 200 && res.status < 400) return true;
  throw new Error(`unexpected status ${res.status}`);
}

const EMAILS: Record<Exclude<Actor, 'logged-out'>, string> = {
  viewer: 'viewer@example.com',
  owner: 'owner@example.com',
  'other-member': 'other@example.com',
  admin: 'admin@example.com',
};

describe('the role matrix', () => {
  let t: TestApp;
  const clients = {} as Record<Actor, Client>;
  let ownerId: string;
  let png: Buffer;

  beforeAll(async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, EMAILS.admin);
    clients.admin = admin;
    clients.owner = await signUpWithRole(t, admin, EMAILS.owner, 'member');
    clients['other-member'] = await signUpWithRole(t, admin, EMAILS['other-member'], 'member');
    clients.viewer = await signUpWithRole(t, admin, EMAILS.viewer, 'viewer');
    clients['logged-out'] = t.client();
    await signUpWithRole(t, admin, 'target@example.com', 'viewer');
    await signUpWithRole(t, admin, 'login@example.com', 'viewer');
    ownerId = (await t.user(EMAILS.owner)).id;
    png = await makePng(40, 30);
  });
  afterAll(() => t.close());

  /**
   * What a check makes on demand (an upload, an invite, an account to delete, ...) is shared by the
   * actors it refuses, and made again after one it allows, who may have used it up.
   */
  const made = new Map<string, Promise<unknown>>();
  function once<T>(name: string, make: () => Promise<T>): Promise<T> {
    if (!made.has(name)) made.set(name, make());
    return made.get(name) as Promise<T>;
  }
  let doomed = 0;

  /** Fresh images and a fresh link for every check, so one actor's delete cannot decide the next one's answer. */
  async function fixture(actor: Actor): Promise<Fixture> {
    const before = new Set(await t.imageIdsNewestFirst(ownerId));
    await t.seedImages(ownerId, 2);
    const [image, shared] = (await t.imageIdsNewestFirst(ownerId)).filter((id) => !before.has(id)) as [
      string,
      string,
    ];
    await t.services.database.q
      .updateTable('images')
      .set({ is_shared: 1 })
      .where('id', '=', shared)
      .execute();
    const owner = await t.user(EMAILS.owner);
    const { token, link } = await t.services.shares.create({ user: owner, ip: 'test' }, [image], {
      expiry: '1d',
      allowDownload: true,
    });
    const album = await t.services.albums.create({ user: owner, ip: 'test' }, 'Album', [image]);
    const albumLink = await t.services.albums.share({ user: owner, ip: 'test' }, album.id, {
      expiry: '1d',
      allowDownload: false,
    });
    return {
      image,
      shared,
      ownerId,
      album: album.id,
      albumToken: albumLink.token,
      targetUserId: (await t.user('target@example.com')).id,
      linkId: link.id,
      token,
      pendingUpload: () =>
        once('upload', async () => {
          const res = await clients.owner.postJson('/uploads/presign', {
            name: 'pending.png',
            size: png.length,
          });
          expect(res.status).toBe(200);
          const policy = (await res.json()) as Policy;
          expect((await postToBucket(policy, png, 'image/png', 'pending.png')).status).toBe(201);
          return policy.key;
        }),
      partsUpload: (use) =>
        once(`parts ${use}`, async () => {
          const res = await clients.owner.postJson('/uploads/parts/start', {
            name: 'parts.png',
            size: png.length,
            type: 'image/png',
          });
          expect(res.status).toBe(200);
          const { key } = (await res.json()) as { key: string };
          const url = await clients.owner.postJson('/uploads/parts/url', { key, part: 1 });
          const put = await fetch(((await url.json()) as { url: string }).url, {
            method: 'PUT',
            body: new Uint8Array(png),
          });
          expect(put.status).toBe(200);
          return key;
        }),
      guestLink: () =>
        once('guest link', async () => {
          const made = await t.services.guestLinks.create(
            { user: owner, ip: 'test' },
            { label: 'Roles', message: '', expiry: '7d', maxFiles: '', maxMib: '', maxFileMib: '' },
          );
          return { id: made.link.id, token: made.token };
        }),
      invite: () =>
        once('invite', async () =>
          t.services.invites.create({ user: await t.user(EMAILS.admin), ip: 'test' }, 'viewer'),
        ),
      passwordLink: () =>
        once('password link', async () => {
          const link = await t.services.shares.create({ user: owner, ip: 'test' }, [image], {
            expiry: '1d',
            allowDownload: false,
            password: SHARE_PASSWORD,
          });
          return link.token;
        }),
      doomedUser: () =>
        once('doomed user', async () => {
          const email = `doomed-${++doomed}@example.com`;
          await signUpWithRole(t, clients.admin, email, 'viewer');
          return { id: (await t.user(email)).id, email };
        }),
      ownerSession: async () => (await t.services.sessions.create(ownerId, { ip: '192.0.2.9' })).session.id,
      ownerKey: async () =>
        (await t.services.accessKeys.create({ user: owner, ip: 'test' }, { name: 'matrix', scope: 'own' }))
          .key.id,
      storeOriginal: async () => {
        const row = await t.services.database.q
          .selectFrom('images')
          .select('original_key')
          .where('id', '=', image)
          .executeTakeFirstOrThrow();
        await t.services.storage.put(row.original_key, png, 'image/png');
      },
      trashed: async () => (await t.services.images.trash({ user: owner, ip: 'test' }, [image])).at,
      async newSession() {
        const client = t.client();
        if (actor === 'logged-out') return client;
        const res = await client.post('/login', { email: EMAILS[actor], password: PASSWORD });
        expect(res.status).toBe(303);
        return client;
      },
    };
  }

  it('has a row for every route the app registers, and none for a route it does not', () => {
    const registered = new Set(
      inspectRoutes(t.app)
        .filter((r) => !r.isMiddleware)
        .map((r) => `${r.method} ${r.path}`),
    );
    const listed = new Set(CHECKS.map(routeOf));
    expect([...registered].filter((r) => !listed.has(r))).toEqual([]);
    expect([...listed].filter((r) => !registered.has(r))).toEqual([]);
  });

  it('allows exactly the listed roles on every route', { timeout: 120_000 }, async () => {
    const mismatches: string[] = [];
    for (const check of CHECKS) {
      made.clear();
      const allowedNow: Actor[] = [];
      for (const actor of ACTORS) {
        const res = await check.request(clients[actor], await fixture(actor));
        let isAllowed: boolean;
        try {
          isAllowed = check.judge ? check.judge(res) : wasAllowed(res);
        } catch (err) {
          mismatches.push(`${check.name} as ${actor}: ${(err as Error).message}`);
          continue;
        }
        if (isAllowed) {
          allowedNow.push(actor);
          made.clear();
        }
      }
      if (allowedNow.join() !== check.allowed.join())
        mismatches.push(`${check.name}: allowed ${allowedNow.join()} (expected ${check.allowed.join()})`);
    }
    expect(mismatches).toEqual([]);
  });

  it('changes nothing when a refused actor tries a change', async () => {
    made.clear();
    const f = await fixture('admin');
    const key = await f.pendingUpload();
    const invite = await f.invite();
    const doomedUser = await f.doomedUser();
    const target = f.targetUserId;
    const ownersImages = await t.count('images', `owner_id = '${ownerId}'`);
    const targetState = () =>
      t.services.database.q
        .selectFrom('users')
        .select(['role', 'is_disabled'])
        .where('id', '=', target)
        .executeTakeFirst();
    const targetBefore = await targetState();
    for (const actor of ['viewer', 'other-member', 'logged-out'] as const) {
      const c = clients[actor];
      await c.post(`/images/${f.image}/rename`, { title: 'hijacked' });
      await c.post(`/images/${f.shared}/delete`);
      await c.post('/trash/empty', { owner: ownerId, confirm: 'yes' });
      await c.post(`/images/${f.image}/visibility`, { shared: '1' });
      await c.post(`/shares/${f.linkId}/revoke`);
      await c.post(`/albums/${f.album}/rename`, { name: 'hijacked' });
      await c.post(`/albums/${f.album}/delete`);
      await c.post(`/albums/${f.album}/remove`, { ids: f.image });
      await c.post(`/albums/${f.album}/images`, { ids: f.shared });
      await c.postJson('/uploads/complete', { key });
      await c.postJson('/uploads/abandon', { key });
      await c.get(`/uploads/complete?key=${encodeURIComponent(key)}`);
      await c.post(`/admin/users/${target}/disable`);
      await c.post(`/admin/users/${target}/role`, { role: 'admin' });
      await c.post(`/admin/users/${doomedUser.id}/delete`, { confirm: doomedUser.email });
      await c.post(`/admin/invites/${invite.id}/revoke`);
    }
    expect(await t.count('images', `id IN ('${f.image}', '${f.shared}') AND trashed_at IS NULL`)).toBe(2);
    expect(await t.count('images', "title = 'hijacked'")).toBe(0);
    expect(await t.count('images', `id = '${f.image}' AND is_shared = 0`)).toBe(1);
    expect(await t.count('share_links', `id = '${f.linkId}' AND revoked_at IS NULL`)).toBe(1);
    expect(await t.count('albums', `id = '${f.album}' AND name = 'Album'`)).toBe(1);
    expect(await t.count('album_images', `album_id = '${f.album}'`)).toBe(1);
    expect(await t.count('images', `owner_id = '${ownerId}'`)).toBe(ownersImages);
    expect(await targetState()).toEqual(targetBefore);
    expect(await t.count('users', `id = '${doomedUser.id}'`)).toBe(1);
    expect(await t.count('invites', `id = '${invite.id}' AND revoked_at IS NULL`)).toBe(1);
    // The owner can still complete the upload nobody else could.
    expect((await clients.owner.postJson('/uploads/complete', { key })).status).toBe(200);
  });
});
