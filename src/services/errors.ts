/** The one error type for "the user did something wrong": its message is safe to show. */
export class UserError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 503,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Any failure of the bucket itself (network, credentials, 5xx) reaches the user as a 503. */
export async function fromStorage<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new StorageUnavailableError(err);
  }
}

export class StorageUnavailableError extends UserError {
  constructor(readonly reason: unknown) {
    super(503, 'Image storage is not reachable right now. Nothing was changed; please try again shortly.');
  }
}
