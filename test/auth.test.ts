import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SESSION_TTL_MS } from '../src/services/sessions.js';
import {
  type Client,
  inviteTokenOf,
  makeTestApp,
  PASSWORD,
  signUp,
  signUpWithRole,
  type TestApp,
} from './support/app.js';
import { fieldValue, texts } from './support/html.js';

const HOUR = 60 * 60 * 1000;
const MINUTE = 60 * 1000;
/** With TRUST_PROXY=true the client address is the last X-Forwarded-For entry. */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

describe('sign-up', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('sends the first visitor of a fresh install from the gallery and the login page to create the administrator', async () => {
    t = await makeTestApp();
    const client = t.client();
    const home = await client.get('/');
    expect(home.headers.get('location')).toMatch(/^\/login/);
    const login = await client.get(home.headers.get('location') as string);
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/signup');
    const page = await client.get('/signup');
    const html = await page.text();
    expect(html).toContain('<h1>Create the administrator account</h1>');
    expect(html).toContain('This gallery has no accounts yet');
    // Once there is one, the login page is the login page again, and sign-up is for invited people.
    await signUp(client, 'first@example.com');
    const visitor = t.client();
    expect((await visitor.get('/login')).status).toBe(200);
    expect(await (await visitor.get('/signup')).text()).not.toContain('administrator account');
  });

  it('makes the first account an admin even when sign-up is invite-only', async () => {
    t = await makeTestApp();
    const client = t.client();
    const page = await client.get('/signup');
    expect(await page.text()).toContain('The first one manages it');
    const res = await signUp(client, 'first@example.com');
    expect(res.headers.get('location')).toBe('/');
    const gallery = await client.get('/');
    expect(gallery.status).toBe(200);
    const html = await gallery.text();
    expect(html).toContain('No images yet');
    expect(html).toContain('first@example.com');
    expect((await t.services.users.findByEmail('first@example.com'))?.role).toBe('admin');
  });

  it('needs an invite after the first account by default', async () => {
    t = await makeTestApp();
    await signUp(t.client(), 'admin@example.com');
    const visitor = t.client();
    const page = await visitor.get('/signup');
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('needs an invite link');
    const res = await visitor.post('/signup', { email: 'sneaky@example.com', password: PASSWORD });
    expect(res.status).toBe(403);
    expect(await t.services.users.findByEmail('sneaky@example.com')).toBeNull();
  });

  it('signs up through a single-use invite link with the role the admin chose', async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const created = await admin.post('/admin/invites', { role: 'viewer' });
    expect(created.status).toBe(201);
    const token = inviteTokenOf(await created.text());
    expect(token).toBeTruthy();

    const guest = t.client();
    expect((await guest.get(`/signup?invite=${token}`)).status).toBe(200);
    await signUp(guest, 'guest@example.com', { invite: token as string });
    expect((await t.services.users.findByEmail('guest@example.com'))?.role).toBe('viewer');

    const again = await t
      .client()
      .post('/signup', { email: 'second@example.com', password: PASSWORD, invite: token as string });
    expect(again.status).toBe(403);
    expect(await again.text()).toContain('invalid, used or expired');
    const list = await (await admin.get('/admin/invites')).text();
    expect(list).toContain('used by guest@example.com');
  });

  it('refuses an expired or revoked invite', async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const first = (await (await admin.post('/admin/invites', { role: 'member' })).text()).match(
      /invite=([a-z0-9]+)/,
    )?.[1];
    t.advance(7 * 24 * HOUR + 1);
    expect((await t.client().get(`/signup?invite=${first}`)).status).toBe(403);

    const second = await t.services.invites.create(
      { user: await t.user('admin@example.com'), ip: 'test' },
      'member',
    );
    const revoke = await admin.post(`/admin/invites/${second.id}/revoke`);
    expect(revoke.status).toBe(303);
    const res = await t
      .client()
      .post('/signup', { email: 'late@example.com', password: PASSWORD, invite: second.token });
    expect(res.status).toBe(403);
  });

  it('lets anyone sign up as a member when SIGNUP=open, and no one when closed', async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open' } });
    await signUp(t.client(), 'admin@example.com');
    await signUp(t.client(), 'member@example.com');
    expect((await t.services.users.findByEmail('member@example.com'))?.role).toBe('member');
    await t.close();

    t = await makeTestApp({ env: { SIGNUP: 'closed' } });
    await signUp(t.client(), 'admin@example.com');
    const res = await t.client().post('/signup', { email: 'x@example.com', password: PASSWORD });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('Sign-up is closed');
  });

  it('explains bad input and keeps what the user typed', async () => {
    t = await makeTestApp();
    const client = t.client();
    const short = await client.post('/signup', { email: 'me@example.com', password: 'short' });
    expect(short.status).toBe(400);
    const html = await short.text();
    expect(html).toContain('at least 10 characters');
    expect(fieldValue(html, 'email')).toBe('me@example.com');
    const badEmail = await client.post('/signup', { email: 'not-an-email', password: PASSWORD });
    expect(badEmail.status).toBe(400);
    expect(await badEmail.text()).toContain('valid email');
    const long = await client.post('/signup', { email: 'me@example.com', password: 'x'.repeat(257) });
    expect(long.status).toBe(400);
    expect(await t.services.users.hasUsers()).toBe(false);
  });

  it('refuses a second account with the same email, whatever its case', async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open' } });
    await signUp(t.client(), 'Same@Example.com');
    const res = await t.client().post('/signup', { email: 'same@example.com', password: PASSWORD });
    expect(res.status).toBe(409);
  });

  it('escapes what the user typed when it shows it back', async () => {
    t = await makeTestApp();
    const res = await t.client().post('/signup', { email: '"><script>alert(1)</script>', password: 'short' });
    const html = await res.text();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;');
  });
});

describe('open sign-up throttling', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeTestApp({ env: { SIGNUP: 'open', TRUST_PROXY: 'true' } });
    await signUp(t.client(), 'admin@example.com');
  });
  afterEach(() => t.close());

  const signUpFrom = (ip: string, email: string, password = PASSWORD) =>
    t.client().post('/signup', { email, password }, from(ip));

  it('allows 5 open sign-ups an hour per address; typos cost nothing and other addresses are not affected', async () => {
    expect((await signUpFrom('192.0.2.1', 'typo@example.com', 'short')).status).toBe(400);
    for (let i = 0; i < 5; i++) expect((await signUpFrom('192.0.2.1', `m${i}@example.com`)).status).toBe(303);
    const refused = await signUpFrom('192.0.2.1', 'sixth@example.com');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.text()).toContain('Too many accounts were created from your network');
    expect(await t.services.users.findByEmail('sixth@example.com')).toBeNull();
    expect((await signUpFrom('203.0.113.1', 'elsewhere@example.com')).status).toBe(303);
    t.advance(HOUR + 1000);
    expect((await signUpFrom('192.0.2.1', 'sixth@example.com')).status).toBe(303);
  });

  it('counts an address that is already taken, so sign-up cannot test many emails quickly', async () => {
    for (let i = 0; i < 5; i++) expect((await signUpFrom('192.0.2.1', 'admin@example.com')).status).toBe(409);
    expect((await signUpFrom('192.0.2.1', 'new@example.com')).status).toBe(429);
  });
});

describe('login and sessions', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await makeTestApp();
    await signUp(t.client(), 'alice@example.com');
  });
  afterEach(() => t.close());

  async function logIn(email = 'alice@example.com', password = PASSWORD) {
    const client = t.client();
    const res = await client.post('/login', { email, password });
    return { client, res };
  }

  it('logs in, sets a HttpOnly SameSite=Lax cookie, and returns to the page asked for', async () => {
    const client = t.client();
    const res = await client.post('/login', {
      email: 'alice@example.com',
      password: PASSWORD,
      next: '/account/password',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/account/password');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^s3g_session=[a-z0-9]+\.[a-z0-9]+;/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
    expect(cookie).toMatch(/Max-Age=2592000/);
  });

  it('never redirects to another site after login', async () => {
    for (const next of ['//evil.example', 'https://evil.example', '/\\evil.example']) {
      const { res } = await (async () => {
        const client = t.client();
        return { res: await client.post('/login', { email: 'alice@example.com', password: PASSWORD, next }) };
      })();
      expect(res.headers.get('location')).toBe('/');
    }
  });

  it('stores only a hash of the session secret', async () => {
    const { client } = await logIn();
    const token = client.cookies.get('s3g_session') ?? '';
    const [id, secret] = token.split('.');
    const row = await t.services.database.q
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', id ?? '')
      .executeTakeFirstOrThrow();
    expect(row).toBeTruthy();
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(Buffer.from(row.secret_hash).length).toBe(32);
  });

  it('marks the cookie Secure and __Host- when APP_ORIGIN is https', async () => {
    await t.close();
    t = await makeTestApp({ env: { APP_ORIGIN: 'https://photos.example.com' } });
    const res = await t.client().post('/signup', { email: 'a@example.com', password: PASSWORD });
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^__Host-s3g_session=/);
    expect(cookie).toMatch(/Secure/);
  });

  it('gives the same message for a wrong password and an unknown email', async () => {
    const wrong = await logIn('alice@example.com', 'wrong password here');
    const unknown = await logIn('nobody@example.com', PASSWORD);
    expect(wrong.res.status).toBe(401);
    expect(unknown.res.status).toBe(401);
    const a = await wrong.res.text();
    const b = await unknown.res.text();
    expect(a).toContain('Incorrect email or password');
    expect(b).toContain('Incorrect email or password');
    expect(wrong.client.cookies.size).toBe(0);
  });

  it('issues a new token on each login (no session fixation)', async () => {
    const first = await logIn();
    const second = await logIn();
    expect(first.client.cookies.get('s3g_session')).not.toBe(second.client.cookies.get('s3g_session'));
    const planted = t.client();
    planted.cookies.set('s3g_session', first.client.cookies.get('s3g_session') ?? '');
    await planted.post('/login', { email: 'alice@example.com', password: PASSWORD });
    expect(planted.cookies.get('s3g_session')).not.toBe(first.client.cookies.get('s3g_session'));
  });

  it('redirects a logged-out visitor to /login and remembers where they were going', async () => {
    const res = await t.client().get('/account/password');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2Faccount%2Fpassword');
  });

  it('logs out: the old cookie no longer works', async () => {
    const { client } = await logIn();
    const token = client.cookies.get('s3g_session') ?? '';
    const out = await client.post('/logout');
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login?loggedOut=1');
    expect(client.cookies.has('s3g_session')).toBe(false);
    const replay = t.client();
    replay.cookies.set('s3g_session', token);
    expect((await replay.get('/')).status).toBe(303);
  });

  it('rejects a forged token with the right id but a wrong secret', async () => {
    const { client } = await logIn();
    const [id] = (client.cookies.get('s3g_session') ?? '').split('.');
    const forged = t.client();
    forged.cookies.set('s3g_session', `${id}.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`);
    expect((await forged.get('/')).status).toBe(303);
  });

  it('expires a session after 30 days without use', async () => {
    const { client } = await logIn();
    t.advance(SESSION_TTL_MS - 1000);
    expect((await client.get('/')).status).toBe(200);
    await t.close();
    t = await makeTestApp();
    await signUp(t.client(), 'alice@example.com');
    const fresh = await logIn();
    t.advance(SESSION_TTL_MS + 1);
    expect((await fresh.client.get('/')).status).toBe(303);
  });

  it('slides the expiry when used, refreshing at most hourly', async () => {
    const { client } = await logIn();
    t.advance(30 * 60 * 1000);
    const early = await client.get('/');
    expect(early.headers.get('set-cookie')).toBeNull();
    t.advance(31 * 60 * 1000);
    const refreshed = await client.get('/');
    expect(refreshed.headers.get('set-cookie')).toMatch(/Max-Age=2592000/);
    t.advance(SESSION_TTL_MS - 1000);
    expect((await client.get('/')).status).toBe(200);
  });

  it('ends every other session when the password changes, and keeps this one', async () => {
    const laptop = await logIn();
    const phone = await logIn();
    const res = await laptop.client.post('/account/password', {
      current: PASSWORD,
      password: 'a brand new passphrase',
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Password changed');
    expect((await laptop.client.get('/')).status).toBe(200);
    expect((await phone.client.get('/')).status).toBe(303);
    expect((await logIn('alice@example.com', PASSWORD)).res.status).toBe(401);
    expect((await logIn('alice@example.com', 'a brand new passphrase')).res.status).toBe(303);
  });

  it('refuses a password change with the wrong current password', async () => {
    const { client } = await logIn();
    const res = await client.post('/account/password', {
      current: 'not my password',
      password: 'a brand new passphrase',
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('current password is not correct');
    expect((await logIn()).res.status).toBe(303);
  });

  it("ends a disabled user's sessions and answers their right password like a wrong one", async () => {
    const { client } = await logIn();
    const user = await t.user('alice@example.com');
    await t.services.users.setDisabled(user.id, true);
    expect((await client.get('/')).status).toBe(303);

    const wrong = await logIn('alice@example.com', 'not the password');
    const right = await logIn();
    expect(right.res.status).toBe(wrong.res.status);
    expect(right.res.status).toBe(401);
    const [wrongPage, rightPage] = [await wrong.res.text(), await right.res.text()];
    expect(rightPage).toContain('Incorrect email or password');
    expect(rightPage).not.toContain('disabled');
    expect(rightPage).toBe(wrongPage);
    expect(right.client.cookies.size).toBe(0);
    const rows = await t.services.database.q
      .selectFrom('audit_log')
      .select(['actor_id', 'actor_email', 'action', 'target', 'detail'])
      .where('action', 'like', 'login%')
      .orderBy('id', 'desc')
      .limit(2)
      .execute();
    expect(rows[0]).toEqual(rows[1]);
    expect(rows[0]).toMatchObject({ action: 'login_failed', actor_id: null, target: 'alice@example.com' });

    await t.services.users.setDisabled(user.id, false);
    expect((await logIn()).res.status).toBe(303);
  });
});

describe('login throttling (OWASP device cookies)', () => {
  let t: TestApp;
  let alice: Client;
  beforeEach(async () => {
    t = await makeTestApp({ env: { TRUST_PROXY: 'true' } });
    alice = t.client();
    await signUp(alice, 'alice@example.com');
  });
  afterEach(() => t.close());

  const attempt = (client: Client, ip: string, password: string, email = 'alice@example.com') =>
    client.post('/login', { email, password }, from(ip));

  /** A browser alice signed in with before: it holds a device cookie, and no session any more. */
  async function knownBrowser(ip: string) {
    const client = t.client();
    expect((await attempt(client, ip, PASSWORD)).status).toBe(303);
    client.cookies.delete('s3g_session');
    return client;
  }

  it('locks one address out of one account after 5 failures, not the right password from another address', async () => {
    for (let i = 0; i < 5; i++)
      expect((await attempt(t.client(), '198.51.100.7', 'wrong password!')).status).toBe(401);
    const blocked = await attempt(t.client(), '198.51.100.7', PASSWORD);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBe(15 * 60);
    expect(await blocked.text()).toContain('Too many failed sign-in attempts. Try again in 15 minutes.');
    expect((await attempt(t.client(), '203.0.113.9', PASSWORD)).status).toBe(303);
    t.advance(15 * MINUTE + 1);
    expect((await attempt(t.client(), '198.51.100.7', PASSWORD)).status).toBe(303);
  });

  it('knows an account by its address in any ASCII case only, so other spellings open no fresh counters', async () => {
    for (let i = 0; i < 5; i++)
      expect((await attempt(t.client(), '198.51.100.7', 'wrong password!')).status).toBe(401);
    expect((await attempt(t.client(), '198.51.100.7', PASSWORD)).status).toBe(429);
    // Fullwidth letters, an invisible soft hyphen, a Kelvin sign: no account, even with the right password.
    for (const spelling of ['ａｌｉｃｅ@example.com', 'ali\u00ADce@example.com', 'alice@example.co\u212A'])
      expect((await attempt(t.client(), '198.51.100.7', PASSWORD, spelling)).status, spelling).toBe(401);
    expect((await attempt(t.client(), '198.51.100.7', PASSWORD, 'ALICE@Example.com')).status).toBe(429);
  });

  it('counts an IPv6 client by its /64, whichever address in it each attempt comes from', async () => {
    for (let i = 1; i <= 5; i++)
      expect((await attempt(t.client(), `2001:db8:7:1::${i.toString(16)}`, 'wrong password!')).status).toBe(
        401,
      );
    // Another address of the same /64, written out in full: still the same client.
    expect((await attempt(t.client(), '2001:0db8:0007:0001:ffff:0:0:1', PASSWORD)).status).toBe(429);
    expect((await attempt(t.client(), '2001:db8:7:2::1', PASSWORD)).status).toBe(303);
  });

  it('slows every untrusted client of an account with growing delays once 20 failures came from anywhere', async () => {
    for (let i = 0; i < 20; i++)
      expect((await attempt(t.client(), `198.51.100.${i}`, 'wrong password!')).status).toBe(401);
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const refused = await attempt(t.client(), `203.0.113.${i}`, 'wrong password!');
      expect(refused.status).toBe(429);
      const wait = Number(refused.headers.get('retry-after'));
      waits.push(wait);
      t.advance(wait * 1000);
      expect((await attempt(t.client(), `203.0.113.${i}`, 'wrong password!')).status).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4, 8]);
    // Failures fade one an hour: once the 24 fade below 20, the right password works from anywhere.
    t.advance(5 * HOUR);
    expect((await attempt(t.client(), '203.0.113.99', PASSWORD)).status).toBe(303);
  });

  it('never locks out a browser that signed in before, whatever is guessed from its address or elsewhere', async () => {
    const known = await knownBrowser('192.0.2.1');
    for (let i = 0; i < 5; i++) await attempt(t.client(), '192.0.2.1', 'wrong password!');
    for (let i = 0; i < 40; i++) await attempt(t.client(), `198.51.100.${i}`, 'wrong password!');
    expect((await attempt(t.client(), '192.0.2.1', PASSWORD)).status).toBe(429);
    expect((await attempt(t.client(), '203.0.113.5', PASSWORD)).status).toBe(429);
    const res = await attempt(known, '192.0.2.1', PASSWORD);
    expect(res.status).toBe(303);
    expect(known.cookies.get('s3g_session')).toBeTruthy();
  });

  it('throttles a known browser on its own: its failures lock out neither the account nor its address', async () => {
    const known = await knownBrowser('192.0.2.1');
    for (let i = 0; i < 10; i++)
      expect((await attempt(known, '192.0.2.1', 'wrong password!')).status).toBe(401);
    const refused = await attempt(known, '192.0.2.1', PASSWORD);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBe(1);
    expect(await refused.text()).toContain('Try again in a second.');
    expect((await attempt(t.client(), '192.0.2.1', PASSWORD)).status).toBe(303);
  });

  it('trusts no device cookie that was forged or names another account', async () => {
    const bob = await signUpWithRole(t, alice, 'bob@example.com', 'member');
    const bobsDevice = bob.cookies.get('s3g_device') as string;
    const alicesDevice = (await knownBrowser('192.0.2.1')).cookies.get('s3g_device') as string;
    expect(bobsDevice).toMatch(/^[0-9a-z]+\.[a-z2-7]{24}\.[\w-]{43}$/);
    for (let i = 0; i < 5; i++) await attempt(t.client(), '198.51.100.1', 'wrong password!');
    // Alice's issue time and nonce with the signature of another token.
    const forged = [...alicesDevice.split('.').slice(0, 2), bobsDevice.split('.')[2]].join('.');
    for (const cookie of [bobsDevice, forged]) {
      const client = t.client();
      client.cookies.set('s3g_device', cookie);
      expect((await attempt(client, '198.51.100.1', PASSWORD)).status).toBe(429);
    }
  });

  it('stops trusting the device cookies of a browser once the password changes', async () => {
    // Someone who once had alice's password kept a device cookie; alice changes her password.
    const intruder = await knownBrowser('198.51.100.1');
    const changed = await alice.post(
      '/account/password',
      { current: PASSWORD, password: 'a brand new passphrase' },
      from('192.0.2.1'),
    );
    expect(changed.status).toBe(200);
    // The old cookie now counts as an untrusted client: 5 guesses from its address, not a bucket of its own.
    for (let i = 0; i < 5; i++)
      expect((await attempt(intruder, '198.51.100.1', 'wrong password!')).status).toBe(401);
    expect((await attempt(intruder, '198.51.100.1', 'wrong password!')).status).toBe(429);
    // The browser that changed it is trusted under the new password, whatever is guessed from its address.
    for (let i = 0; i < 5; i++) await attempt(t.client(), '192.0.2.1', 'wrong password!');
    expect((await attempt(t.client(), '192.0.2.1', 'a brand new passphrase')).status).toBe(429);
    alice.cookies.delete('s3g_session');
    expect((await attempt(alice, '192.0.2.1', 'a brand new passphrase')).status).toBe(303);
  });

  it('sets the device cookie HttpOnly, SameSite=Strict, for /login only, and signs it with a key kept in the database', async () => {
    const res = await attempt(t.client(), '192.0.2.1', PASSWORD);
    const device = res.headers.getSetCookie().find((line) => line.startsWith('s3g_device=')) ?? '';
    expect(device).toMatch(/; Path=\/login(;|$)/);
    expect(device).toMatch(/HttpOnly/);
    expect(device).toMatch(/SameSite=Strict/);
    expect(device).toMatch(/Max-Age=15552000/);
    expect(await t.count('app_secrets', "name = 'device_token_key' AND length(value) = 32")).toBe(1);
    await t.close();
    t = await makeTestApp({ env: { APP_ORIGIN: 'https://photos.example.com' } });
    const https = await t
      .client('https://photos.example.com')
      .post('/signup', { email: 'a@example.com', password: PASSWORD });
    const secure = https.headers.getSetCookie().find((line) => line.startsWith('__Secure-s3g_device=')) ?? '';
    expect(secure).toMatch(/Secure/);
  });

  it('stops one address spraying many accounts, without locking out known browsers behind it or other addresses', async () => {
    const known = await knownBrowser('192.0.2.1');
    for (let i = 0; i < 100; i++)
      expect((await attempt(t.client(), '192.0.2.1', 'wrong password!', `user${i}@example.com`)).status).toBe(
        401,
      );
    expect((await attempt(t.client(), '192.0.2.1', 'wrong password!', 'user100@example.com')).status).toBe(
      429,
    );
    expect((await attempt(t.client(), '192.0.2.1', PASSWORD)).status).toBe(429);
    expect((await attempt(known, '192.0.2.1', PASSWORD)).status).toBe(303);
    expect((await attempt(t.client(), '203.0.113.1', PASSWORD)).status).toBe(303);
  });

  it('counts parallel guesses one by one', async () => {
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => attempt(t.client(), '192.0.2.1', 'wrong password!')),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(25);
  });

  it('answers 50 parallel sign-ins of different people from different addresses, none with an error', async () => {
    // Each is charged to its own counters; none may fail for another's bookkeeping (on PostgreSQL a
    // scope-wide read inside the charge once made them abort one another, and some answered 500).
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        attempt(t.client(), `198.18.${i}.1`, 'wrong password!', `person${i}@example.com`),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(401));
  });

  it('throttles wrong current passwords on the password page per account and address', async () => {
    const change = (current: string, ip: string) =>
      alice.post('/account/password', { current, password: 'a brand new passphrase' }, from(ip));
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => change('not my password', '192.0.2.1')),
    );
    expect(answers.filter((r) => r.status === 400)).toHaveLength(5);
    const refused = answers.filter((r) => r.status === 429);
    expect(refused).toHaveLength(15);
    expect(Number(refused[0]?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await change(PASSWORD, '192.0.2.1')).status).toBe(429);
    expect((await change(PASSWORD, '203.0.113.1')).status).toBe(200);
  });
});

describe('roles', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('lets only admins reach admin pages', async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const member = await signUpWithRole(t, admin, 'member@example.com', 'member');
    const viewer = await signUpWithRole(t, admin, 'viewer@example.com', 'viewer');
    expect((await admin.get('/admin/invites')).status).toBe(200);
    for (const client of [member, viewer]) {
      const page = await client.get('/admin/invites');
      expect(page.status).toBe(403);
      expect(await page.text()).toContain('You do not have permission');
      expect((await client.post('/admin/invites', { role: 'admin' })).status).toBe(403);
    }
    const anonymous = await t.client().get('/admin/invites');
    expect(anonymous.status).toBe(303);
    expect((await t.services.invites.list()).map((i) => i.role).sort()).toEqual(['member', 'viewer']);
  });

  it('refuses an unknown role for an invite', async () => {
    t = await makeTestApp();
    const admin = t.client();
    await signUp(admin, 'admin@example.com');
    const res = await admin.post('/admin/invites', { role: 'superuser' });
    expect(res.status).toBe(400);
    expect(await t.services.invites.list()).toHaveLength(0);
  });
});

describe('where you are signed in (the account page)', () => {
  let t: TestApp;
  afterEach(() => t.close());
  const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
  const IPHONE =
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
  /** The account page's sessions, as the laptop (Firefox, at LAPTOP_IP) sees them. */
  const LAPTOP_IP = '198.51.100.7';
  const rows = async (client: Client) =>
    texts(await (await client.get('/account', from(LAPTOP_IP))).text(), '.sessions tbody tr');

  it('lists each browser with its device, address and last seen, and signs out one, or all others', async () => {
    t = await makeTestApp({ env: { TRUST_PROXY: 'true' } });
    const laptop = t.client();
    await signUp(laptop, 'admin@example.com');
    const ana = t.client();
    const email = 'admin@example.com';
    expect(
      (await ana.post('/login', { email, password: PASSWORD }, { 'User-Agent': FIREFOX, ...from(LAPTOP_IP) }))
        .status,
    ).toBe(303);
    const phone = t.client();
    expect(
      (
        await phone.post(
          '/login',
          { email, password: PASSWORD },
          { 'User-Agent': IPHONE, ...from('203.0.113.5') },
        )
      ).status,
    ).toBe(303);

    // Seen from the laptop (Firefox): three browsers, this one first and marked, each with its address.
    const seen = await rows(ana);
    expect(seen).toHaveLength(3);
    expect(seen[0]).toContain('Firefox on Linux (this browser)');
    expect(seen[0]).toContain(LAPTOP_IP);
    expect(seen.find((r) => r.includes('Safari on iOS'))).toContain('203.0.113.5');
    // A browser seen from a new address says so once it is seen again, a minute on at the soonest
    // (clients that alternate addresses do not write on every request).
    t.advance(30_000);
    expect((await phone.get('/', from('203.0.113.99'))).status).toBe(200);
    expect((await rows(ana)).find((r) => r.includes('Safari on iOS'))).toContain('203.0.113.5');
    t.advance(30_000);
    expect((await phone.get('/', from('203.0.113.99'))).status).toBe(200);
    expect((await rows(ana)).find((r) => r.includes('Safari on iOS'))).toContain('203.0.113.99');

    // Sign the phone out from the laptop: its next request is a stranger's.
    const phoneId = (phone.cookies.get('s3g_session') as string).split('.')[0] as string;
    expect((await ana.post(`/account/sessions/${phoneId}/end`)).headers.get('location')).toBe(
      '/account?ended=1',
    );
    expect((await phone.get('/')).headers.get('location')).toMatch(/^\/login/);
    expect(await (await ana.get('/account?ended=1')).text()).toContain('That browser is signed out.');
    // Not twice, not this browser (Log out does that), not someone else's.
    expect((await ana.post(`/account/sessions/${phoneId}/end`)).status).toBe(404);
    const anaId = (ana.cookies.get('s3g_session') as string).split('.')[0] as string;
    expect((await ana.post(`/account/sessions/${anaId}/end`)).status).toBe(404);

    // Everywhere else: the first browser goes, this one stays.
    const all = await ana.post('/account/sessions/end-others');
    expect(all.headers.get('location')).toBe('/account?endedOthers=1');
    expect((await laptop.get('/')).headers.get('location')).toMatch(/^\/login/);
    expect(await rows(ana)).toHaveLength(1);
    expect(await (await ana.get('/account')).text()).toContain('This is the only browser signed in');
    expect((await t.services.audit.page({}, null)).entries.map((e) => e.detail)).toEqual(
      expect.arrayContaining(['ended from another session', 'ended 1 other session']),
    );
  });
});
