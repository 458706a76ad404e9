import { zValidator } from '@hono/zod-validator';
import type { MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { cursorParam } from '../services/cursors.js';
import { Invalid } from '../services/errors.js';

/**
 * Request input, read with @hono/zod-validator: a handler behind `form(...)`, `json(...)` or
 * `query(...)` takes `c.req.valid(target)`, typed by the schema. What fails a schema is an Invalid
 * refusal with the first issue's message (the app's error page, or JSON for scripts), thrown from
 * the validator's hook. The services still judge what the values mean (a title's length, a
 * password, a role, a link's expiry) and the routes show those refusals on their forms: these
 * schemas only give each field its shape.
 */

/** The validator's hook for everything the routes check: the first message, as a 400. */
function refuse(result: { success: boolean; error?: { issues: readonly { message: string }[] } }): void {
  if (!result.success) throw new Invalid(result.error?.issues[0]?.message ?? 'That request was not valid.');
}

/**
 * The validator, with a body it cannot parse (malformed multipart, broken JSON) answered by the
 * app's own words instead of hono's. An error from the handler after it is not the body's.
 */
function readable<M extends MiddlewareHandler>(validate: M, message: string): M {
  return (async (c, next) => {
    let isRead = false;
    try {
      return await validate(c, () => {
        isRead = true;
        return next();
      });
    } catch (err) {
      if (!isRead && err instanceof HTTPException && err.status === 400) throw new Invalid(message);
      throw err;
    }
  }) as M;
}

export const form = <T extends z.ZodType>(schema: T) =>
  readable(
    zValidator('form', schema, refuse),
    'That form could not be read. Please reload the page and try again.',
  );

const SEND_JSON = 'Send a JSON object.';
const isJson = (type: string | undefined) => /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type ?? '');

/** A JSON object body (upload.js sends one); anything else is refused before the schema looks. */
export const json = <T extends z.ZodType>(schema: T) => {
  const validate = readable(zValidator('json', schema, refuse), SEND_JSON);
  const requireJson: typeof validate = (c, next) => {
    if (!isJson(c.req.header('Content-Type'))) throw new Invalid(SEND_JSON);
    return validate(c, next);
  };
  return requireJson;
};

export const query = <T extends z.ZodType>(schema: T) => zValidator('query', schema, refuse);

/** One text field: repeated names keep the first, a file counts as empty, a missing one is ''. */
export const text = z.preprocess((value) => {
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : '';
}, z.string());

/** A checkbox (or hidden field) sent as "1" when set. */
export const flag = text.transform((value) => value === '1');

/** A page link's position in a keyset-paginated list (`?cursor=`): null for the first page. */
export const cursor = <T>(codec: z.ZodType<T, string>) => ({
  cursor: text.pipe(cursorParam(codec)),
});

/** The image ids a gallery selection form sent (checkboxes named "ids"), at most 500. */
export const selectedIds = z.preprocess(idsOf, z.array(z.string()).min(1, 'Select some images first.'));

/**
 * As selectedIds, but an empty list when no box was ticked: the gallery's own buttons answer that
 * by going back to the gallery with a sentence, not with an error page (scripts off, they are enabled).
 */
export const tickedIds = z.preprocess(idsOf, z.array(z.string()));

function idsOf(value: unknown): string[] {
  return [value]
    .flat()
    .filter((v) => typeof v === 'string')
    .slice(0, 500);
}
