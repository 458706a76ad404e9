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

/**
 * The sort key and id of the last image shown, and the gallery's order, for galleries ordered newest
 * first: `1712345678901.k3j4h5` by upload time (created_at), `t1712345678901.k3j4h5` by date taken
 * (taken_sort, which is before 1970 for an old scan, hence the sign). A link keeps its order
 * whatever else the URL says, so a page never continues another order's list.
 */
export const imageCursor = z.codec(
  z.string().regex(/^t?-?\d{1,15}\.[a-z0-9]{1,64}$/),
  z.object({ order: z.enum(['uploaded', 'taken']), sort: z.number().int(), id: z.string() }),
  {
    decode: (text) => {
      const order = text.startsWith('t') ? ('taken' as const) : ('uploaded' as const);
      const [sort = '', id = ''] = text.replace(/^t/, '').split('.');
      return { order, sort: Number(sort), id };
    },
    encode: ({ order, sort, id }) => `${order === 'taken' ? 't' : ''}${sort}.${id}`,
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
