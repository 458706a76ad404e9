import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  Conflict,
  type DomainError,
  Forbidden,
  Gone,
  Invalid,
  NotFound,
  Throttled,
  TooLarge,
  Unauthenticated,
  Unavailable,
  UnsupportedType,
} from './services/errors.js';

/** The one map from a refusal's kind to the status it answers with. */
const STATUS_OF = new Map<abstract new (...args: never[]) => DomainError, ContentfulStatusCode>([
  [Invalid, 400],
  [Unauthenticated, 401],
  [Forbidden, 403],
  [NotFound, 404],
  [Conflict, 409],
  [Gone, 410],
  [TooLarge, 413],
  [UnsupportedType, 415],
  [Throttled, 429],
  [Unavailable, 503],
]);

/** The status of a domain error; a subclass answers as the kind it extends. */
export function statusOf(err: DomainError): ContentfulStatusCode {
  for (let kind = err.constructor; kind !== Error; kind = Object.getPrototypeOf(kind)) {
    const status = STATUS_OF.get(kind as abstract new () => DomainError);
    if (status) return status;
  }
  return 500;
}

/** Sets what the answer to a refusal carries besides its status (Retry-After), and returns the status. */
export function answerRefusal(c: Context, err: DomainError): ContentfulStatusCode {
  if (err instanceof Throttled && err.retryAfterSeconds)
    c.header('Retry-After', String(err.retryAfterSeconds));
  return statusOf(err);
}
