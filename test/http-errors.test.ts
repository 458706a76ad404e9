import { describe, expect, it } from 'vitest';
import { statusOf } from '../src/http-errors.js';
import {
  Conflict,
  Forbidden,
  fromStorage,
  Gone,
  Invalid,
  NotFound,
  Throttled,
  TooLarge,
  Unauthenticated,
  Unavailable,
  UnsupportedType,
} from '../src/services/errors.js';

describe('domain errors', () => {
  it('answer with one status per kind', () => {
    const answers = [
      new Invalid('x'),
      new Unauthenticated('x'),
      new Forbidden('x'),
      new NotFound('x'),
      new Conflict('x'),
      new Gone('x'),
      new TooLarge('x'),
      new UnsupportedType('x'),
      new Throttled('x', 5),
      new Unavailable('x'),
    ].map((err) => [err.name, statusOf(err)]);
    expect(answers).toEqual([
      ['Invalid', 400],
      ['Unauthenticated', 401],
      ['Forbidden', 403],
      ['NotFound', 404],
      ['Conflict', 409],
      ['Gone', 410],
      ['TooLarge', 413],
      ['UnsupportedType', 415],
      ['Throttled', 429],
      ['Unavailable', 503],
    ]);
  });

  it('turn a failure of the bucket into Unavailable, keeping what the bucket said, and let refusals through', async () => {
    const said = new Error('connect ECONNREFUSED');
    const err = await fromStorage(Promise.reject(said)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Unavailable);
    expect((err as Unavailable).cause).toBe(said);
    expect((err as Error).message).toMatch(/^Image storage is not reachable right now/);
    const refusal = new Conflict('taken');
    await expect(fromStorage(Promise.reject(refusal))).rejects.toBe(refusal);
  });
});
