import type { JSX } from 'hono/jsx/jsx-runtime';
import type { AppContext } from '../env.js';

/**
 * The gallery's one cache: whole rendered pages, because sixty cards are most of what a gallery
 * page costs. Its rule: a view is a pure function of its props, so a page is reused only for props
 * equal as JSON to those it was rendered from (the viewer, the owner, every card with its signed
 * thumbnail URL, the cursor, the notice). Any change to one of them, a rename or the hourly
 * re-signing of the URLs alike, is another key; past MAX_PAGES the least recently used goes.
 * A page is kept as the UTF-8 bytes that go out, so a reuse costs neither rendering nor encoding.
 */
const MAX_PAGES = 64;
const pages = new Map<string, Uint8Array<ArrayBuffer>>();
const utf8 = new TextEncoder();

/** What `page(c, <View {...props} />)` answers, rendered only when no page from equal props is kept. */
export function cachedPage<P extends object>(c: AppContext, View: (props: P) => JSX.Element, props: P) {
  const key = JSON.stringify([View.name, props]);
  let bytes = pages.get(key);
  if (bytes === undefined) {
    bytes = utf8.encode(`<!DOCTYPE html>${<View {...props} />}`);
    if (pages.size >= MAX_PAGES) pages.delete(pages.keys().next().value as string);
  } else {
    pages.delete(key);
  }
  pages.set(key, bytes);
  return c.body(bytes, 200, { 'Content-Type': 'text/html; charset=UTF-8' });
}
