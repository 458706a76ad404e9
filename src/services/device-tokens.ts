import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AppDb } from '../db/database.js';
import { appSecretsRepository } from '../db/repositories/app-secrets.js';
import type { Clock } from './clock.js';
import { randomToken } from './tokens.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** How long a browser stays "known" after its last successful sign-in or link opening. */
export const DEVICE_TOKEN_TTL_MS = 180 * DAY_MS;
const KEY_NAME = 'device_token_key';

/**
 * OWASP's device cookies: after a success, the browser gets a token naming what it opened
 * (`user:<id>:<password version>`, `link:<id>`), signed with a key kept in the database. A browser
 * that shows a valid one is throttled on its own, so a stranger's failures elsewhere never lock it
 * out. The token grants nothing else: it is not a session.
 */
export function createDeviceTokens({ database, clock }: { database: AppDb; clock: Clock }) {
  const secrets = appSecretsRepository(database);
  /** The signing key, made by the first instance that needs it and read by every other. */
  let key: Promise<Buffer> | undefined;
  function signingKey(): Promise<Buffer> {
    key ??= (async () => {
      await secrets.insertIfAbsent(KEY_NAME, randomBytes(32), clock());
      const value = await secrets.get(KEY_NAME);
      if (!value) throw new Error(`app_secrets has no ${KEY_NAME}`);
      return value;
    })().catch((err: unknown) => {
      key = undefined; // the database was unreachable: the next request asks again
      throw err;
    });
    return key;
  }
  // Asked for now, outside any transaction: a key inserted inside one that then rolled back would
  // sign tokens no other instance can check. A failure here is met again by the first request.
  signingKey().catch(() => {});
  const mac = async (subject: string, issuedAt: string, nonce: string) =>
    createHmac('sha256', await signingKey())
      .update(`${subject}\n${issuedAt}\n${nonce}`)
      .digest('base64url');

  return {
    /** `<issued at>.<nonce>.<signature>`: the nonce names this browser for throttling. */
    async issue(subject: string): Promise<string> {
      const issuedAt = clock().toString(36);
      const nonce = randomToken();
      return `${issuedAt}.${nonce}.${await mac(subject, issuedAt, nonce)}`;
    },

    /** The browser's nonce when the token is ours, for this subject, and not too old; else null. */
    async verify(token: string | undefined, subject: string): Promise<string | null> {
      if (!token || token.length > 200) return null;
      const [issuedAt = '', nonce = '', signature = ''] = token.split('.');
      if (!/^[0-9a-z]{1,12}$/.test(issuedAt) || !/^[a-z2-7]{24}$/.test(nonce)) return null;
      const age = clock() - Number.parseInt(issuedAt, 36);
      // A day of slack backwards: the system clock may be stepped back after the token was issued.
      if (!(age > -DAY_MS && age < DEVICE_TOKEN_TTL_MS)) return null;
      const expected = Buffer.from(await mac(subject, issuedAt, nonce));
      const given = Buffer.from(signature);
      return given.length === expected.length && timingSafeEqual(given, expected) ? nonce : null;
    },
  };
}

export type DeviceTokens = ReturnType<typeof createDeviceTokens>;
