import type { Role, User } from './services/users.js';

/**
 * Who may do what: the one place that compares roles and owner ids for permission. Route guards,
 * services and views all ask `can`; what a refusal looks like (a 403, or a 404 that reveals
 * nothing) stays with whoever asks.
 *
 * - `admin`: the admin area, and anyone's gallery.
 * - `image.upload`: upload new images (admins and members; viewers only look).
 * - `image.view`: see this image: its owner, an admin, or anyone signed in when it is shared.
 * - `image.change`: rename, replace, delete, show or hide images; with an image, this one:
 *   owners change their own, admins anyone's. Seeing a shared image gives no more than that.
 * - `share.create`: make share links and keep a page of them (which images: as `image.change`).
 * - `share.revoke`: revoke this link: its owner or an admin, whatever their role now.
 * - `upload.complete`: finish (or take over) this pending upload: only who started it.
 * - `album.create`: make albums (admins and members: an album holds its owner's own images).
 * - `album.change`: see, rename, fill, share or delete this album: its owner or an admin.
 */
export type Action =
  | 'admin'
  | 'image.upload'
  | 'image.view'
  | 'image.change'
  | 'share.create'
  | 'share.revoke'
  | 'upload.complete'
  | 'album.create'
  | 'album.change';

/** Who asks: a signed-in user. */
type Subject = Pick<User, 'id' | 'role'>;
/** Anything with an owner: an image, a share link, a pending upload. */
export interface Owned {
  ownerId: string;
}

/** The roles that may take an action at all (before any object is looked at). */
const ROLES_FOR: Record<Action, readonly Role[]> = {
  admin: ['admin'],
  'image.upload': ['admin', 'member'],
  'image.view': ['admin', 'member', 'viewer'],
  'image.change': ['admin', 'member'],
  'share.create': ['admin', 'member'],
  'share.revoke': ['admin', 'member', 'viewer'],
  'upload.complete': ['admin', 'member', 'viewer'],
  'album.create': ['admin', 'member'],
  'album.change': ['admin', 'member'],
};

const owns = (user: Subject, object: Owned) => object.ownerId === user.id;
const isAdmin = (user: Subject) => user.role === 'admin';

export function can(
  user: Subject,
  action: 'admin' | 'image.upload' | 'image.change' | 'share.create' | 'album.create',
): boolean;
export function can(user: Subject, action: 'image.view', image: Owned & { isShared: boolean }): boolean;
export function can(
  user: Subject,
  action: 'image.change' | 'share.revoke' | 'upload.complete' | 'album.change',
  object: Owned,
): boolean;
export function can(user: Subject, action: Action, object?: Owned & { isShared?: boolean }): boolean {
  if (!ROLES_FOR[action].includes(user.role)) return false;
  if (!object) return true;
  switch (action) {
    case 'image.view':
      return owns(user, object) || isAdmin(user) || object.isShared === true;
    case 'image.change':
    case 'share.revoke':
    case 'album.change':
      return owns(user, object) || isAdmin(user);
    case 'upload.complete':
      return owns(user, object);
    default:
      return true;
  }
}
