import { describe, expect, it } from 'vitest';
import { type Action, can, type Owned } from '../src/policy.js';
import type { Role } from '../src/services/users.js';

const ROLES: Role[] = ['admin', 'member', 'viewer'];
const user = (role: Role) => ({ id: `${role}-id`, role });
type On = 'nothing' | 'own' | "someone else's" | "someone else's shared";
const objects: Record<On, (role: Role) => (Owned & { isShared: boolean }) | undefined> = {
  nothing: () => undefined,
  own: (role) => ({ ownerId: `${role}-id`, isShared: false }),
  "someone else's": () => ({ ownerId: 'stranger-id', isShared: false }),
  "someone else's shared": () => ({ ownerId: 'stranger-id', isShared: true }),
};

/** One row per action and kind of object (an image, link or upload): the roles it allows. */
const TABLE: { action: Action; on: On; allowed: Role[] }[] = [
  { action: 'admin', on: 'nothing', allowed: ['admin'] },
  { action: 'image.upload', on: 'nothing', allowed: ['admin', 'member'] },
  { action: 'image.change', on: 'nothing', allowed: ['admin', 'member'] },
  { action: 'share.create', on: 'nothing', allowed: ['admin', 'member'] },
  { action: 'image.view', on: 'own', allowed: ['admin', 'member', 'viewer'] },
  { action: 'image.view', on: "someone else's", allowed: ['admin'] },
  { action: 'image.view', on: "someone else's shared", allowed: ['admin', 'member', 'viewer'] },
  { action: 'image.change', on: 'own', allowed: ['admin', 'member'] },
  { action: 'image.change', on: "someone else's", allowed: ['admin'] },
  { action: 'image.change', on: "someone else's shared", allowed: ['admin'] },
  { action: 'share.revoke', on: 'own', allowed: ['admin', 'member', 'viewer'] },
  { action: 'share.revoke', on: "someone else's", allowed: ['admin'] },
  { action: 'upload.complete', on: 'own', allowed: ['admin', 'member', 'viewer'] },
  { action: 'upload.complete', on: "someone else's", allowed: [] },
];

describe('can', () => {
  it.each(TABLE)('$action on $on: $allowed', ({ action, on, allowed }) => {
    const ask = can as (u: ReturnType<typeof user>, a: Action, o?: Owned & { isShared: boolean }) => boolean;
    const granted = ROLES.filter((role) => ask(user(role), action, objects[on](role)));
    expect(granted).toEqual(allowed);
  });
});
