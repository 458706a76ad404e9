import { html } from 'hono/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppContext } from '../env.js';
import { answerRefusal } from '../http-errors.js';
import { DomainError } from '../services/errors.js';

type Node = ReturnType<typeof html> | Promise<string> | string | object;

/** A whole HTML page. */
export function page(c: AppContext, node: Node, status: ContentfulStatusCode = 200) {
  return fragment(c, html`<!DOCTYPE html>${node}`, status);
}

/** A piece of HTML (a whole page, or what htmx swaps in). Views are synchronous: `${}` renders one. */
export async function fragment(c: AppContext, node: Node, status: ContentfulStatusCode = 200) {
  return c.html(`${await node}`, status);
}

/** Re-renders a form with the message of a refusal (a DomainError); anything else is a real failure. */
export function formError(
  c: AppContext,
  err: unknown,
  render: (message: string) => Node,
): ReturnType<typeof page> {
  if (!(err instanceof DomainError)) throw err;
  return page(c, render(err.message), answerRefusal(c, err));
}

/** Longer than any address the app links to: a longer target is not one of ours. */
const MAX_NEXT_LENGTH = 2048;

/**
 * A redirect target taken from the request (`next`, `back`), kept only when a browser would stay on
 * our origin. The WHATWG parser reads it as the browser will (it drops tabs and newlines and takes
 * "\" for "/"), and what we send is the parser's re-serialized path, never the raw input.
 */
export function safeNext(next: string | undefined, appOrigin: string): string {
  if (!next || next.length > MAX_NEXT_LENGTH || !URL.canParse(next, appOrigin)) return '/';
  const url = new URL(next, appOrigin);
  if (url.origin !== appOrigin) return '/';
  const target = `${url.pathname}${url.search}${url.hash}`;
  // "/.//evil.example" resolves to the path "//evil.example", which a browser reads as a host.
  return target.startsWith('//') ? '/' : target;
}
