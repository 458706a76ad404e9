import { z } from 'zod';

/**
 * Keyset pagination: a page link carries the sort key of the last row shown, its parts joined by
 * "." (`?cursor=1712345678901.k3j4h5`, `?cursor=4711`). The services write it with writeCursor, the
 * routes read it with cursorParam: a cursor that does not decode is a 400 on every page.
 */

/** The id of the last row shown, for lists ordered by an integer id (audit log, changes). */
export const idCursor = z.codec(z.string().regex(/^\d{1,15}$/), z.number().int().nonnegative(), {
  decode: (text) => Number(text),
  encode: (id) => String(id),
});

/** The (created_at, id) of the last image shown, for galleries ordered newest first. */
export const imageCursor = z.codec(
  z.string().regex(/^\d{1,15}\.[a-z0-9]{1,64}$/),
  z.object({ createdAt: z.number().int().nonnegative(), id: z.string() }),
  {
    decode: (text) => {
      const [createdAt = '', id = ''] = text.split('.');
      return { createdAt: Number(createdAt), id };
    },
    encode: ({ createdAt, id }) => `${createdAt}.${id}`,
  },
);

export type ImageCursor = z.output<typeof imageCursor>;

const INVALID = 'That page link is not valid. Start again from the first page.';

/**
 * A page link's `cursor` query parameter, as the routes validate it: the position it names, or null
 * (the first page) when it is empty.
 */
export function cursorParam<T>(codec: z.ZodType<T, string>) {
  return z.union([z.literal('').transform(() => null), codec], { error: INVALID });
}

export function writeCursor<T>(codec: z.ZodType<T, string>, position: T): string {
  return z.encode(codec, position);
}
