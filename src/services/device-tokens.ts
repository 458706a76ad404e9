import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/connection.js';
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
export function createDeviceTokens({ db, clock }: { db: Db; clock: Clock }) {
  db.prepare('INSERT OR IGNORE INTO app_secrets (name, value, created_at) VALUES (?, ?, ?)').run(
    KEY_NAME,
    randomBytes(32),
    clock(),
  );
  const key = db.prepare('SELECT value FROM app_secrets WHERE name = ?').pluck().get(KEY_NAME) as Buffer;
  const mac = (subject: string, issuedAt: string, nonce: string) =>
    createHmac('sha256', key).update(`${subject}\n${issuedAt}\n${nonce}`).digest('base64url');

  return {
    /** `<issued at>.<nonce>.<signature>`: the nonce names this browser for throttling. */
    issue(subject: string): string {
      const issuedAt = clock().toString(36);
      const nonce = randomToken();
      return `${issuedAt}.${nonce}.${mac(subject, issuedAt, nonce)}`;
    },

    /** The browser's nonce when the token is ours, for this subject, and not too old; else null. */
    verify(token: string | undefined, subject: string): string | null {
      if (!token || token.length > 200) return null;
      const [issuedAt = '', nonce = '', signature = ''] = token.split('.');
      if (!/^[0-9a-z]{1,12}$/.test(issuedAt) || !/^[a-z2-7]{24}$/.test(nonce)) return null;
      const age = clock() - Number.parseInt(issuedAt, 36);
      // A day of slack backwards: the system clock may be stepped back after the token was issued.
      if (!(age > -DAY_MS && age < DEVICE_TOKEN_TTL_MS)) return null;
      const expected = Buffer.from(mac(subject, issuedAt, nonce));
      const given = Buffer.from(signature);
      return given.length === expected.length && timingSafeEqual(given, expected) ? nonce : null;
    },
  };
}

export type DeviceTokens = ReturnType<typeof createDeviceTokens>;
