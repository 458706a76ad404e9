import { type HTMLElement, parse } from 'node-html-parser';

/**
 * Tests read pages the way a browser does, through a DOM, not with regular expressions over the
 * markup: attribute order, quoting and entities (`&amp;` in a URL) stop mattering.
 * Each function takes a page's text or an element found in it.
 */
export type Html = string | HTMLElement;

// Only script and style hold raw text: the parser's default also reads <pre> and <noscript> as
// text, which would hide an element (an inline handler, say) inside them from every check.
const root = (html: Html) =>
  typeof html === 'string' ? parse(html, { blockTextElements: { script: true, style: true } }) : html;

/** Every element the selector finds, in document order. */
export const all = (html: Html, selector: string): HTMLElement[] => root(html).querySelectorAll(selector);

/** How many elements the selector finds. */
export const count = (html: Html, selector: string): number => all(html, selector).length;

/** An attribute of the first element the selector finds, entities decoded; undefined if either is missing. */
export const attr = (html: Html, selector: string, name: string): string | undefined =>
  root(html).querySelector(selector)?.getAttribute(name);

/** That attribute of every element the selector finds (those without it are left out). */
export const attrs = (html: Html, selector: string, name: string): string[] =>
  all(html, selector).flatMap((el) => el.getAttribute(name) ?? []);

/** The text of the first element the selector finds, entities decoded; undefined if there is none. */
export const text = (html: Html, selector: string): string | undefined =>
  root(html).querySelector(selector)?.text;

/** The text of every element the selector finds. */
export const texts = (html: Html, selector: string): string[] => all(html, selector).map((el) => el.text);

/** The value of the named input (the first one, within `scope` if given). */
export const fieldValue = (html: Html, name: string, scope = ''): string | undefined =>
  attr(html, `${scope} input[name="${name}"]`.trim(), 'value');

/** A form as a browser without JavaScript would post it: where to, and its hidden fields in order. */
export function hiddenForm(
  html: Html,
  selector: string,
): { action: string | undefined; fields: [string, string][] } {
  const form = root(html).querySelector(selector);
  const fields = (form?.querySelectorAll('input[type="hidden"][name]') ?? []).map(
    (input) => [input.getAttribute('name') as string, input.getAttribute('value') ?? ''] as [string, string],
  );
  return { action: form?.getAttribute('action'), fields };
}

/** Names of the attributes on any element that run script (`onclick=` and the like). */
export const inlineHandlers = (html: Html): string[] =>
  all(html, '*').flatMap((el) => Object.keys(el.attributes).filter((name) => /^on/i.test(name)));

/** The markup of the first element the selector finds, its own tag included. */
export const markup = (html: Html, selector: string): string | undefined =>
  root(html).querySelector(selector)?.outerHTML;
