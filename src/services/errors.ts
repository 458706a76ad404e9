/**
 * Why a request was refused, in the words of the rules. The message is safe to show the user;
 * src/http-errors.ts is the one place that turns each kind into a status.
 */
export abstract class DomainError extends Error {
  override name = this.constructor.name;
}

/** What was sent cannot be used as it is (a malformed field, a value out of range). */
export class Invalid extends DomainError {}

/** Who is asking is not established: not signed in, or a wrong password. */
export class Unauthenticated extends DomainError {}

/** The asker is known, and may not do this. */
export class Forbidden extends DomainError {}

/** There is no such thing, or none the asker may know of. */
export class NotFound extends DomainError {}

/** The current state does not allow it (a duplicate, the last admin, a race that was lost). */
export class Conflict extends DomainError {}

/** It existed, and is no longer available. */
export class Gone extends DomainError {}

/** Larger than a limit allows (the upload limit, a quota). */
export class TooLarge extends DomainError {}

/** A file of a kind that is not accepted. */
export class UnsupportedType extends DomainError {}

/** Too many attempts: the asker may try again after `retryAfterSeconds`. */
export class Throttled extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** Something the app depends on (the bucket) failed; `cause`, when set, is what it said. */
export class Unavailable extends DomainError {}

const STORAGE_UNAVAILABLE =
  'Image storage is not reachable right now. Nothing was changed; please try again shortly.';

/** Any failure of the bucket itself (network, credentials, 5xx) reaches the user as Unavailable. */
export async function fromStorage<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw new Unavailable(STORAGE_UNAVAILABLE, { cause: err });
  }
}
