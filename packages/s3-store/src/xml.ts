import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { badRequest } from './errors.js';

const malformed = () => badRequest('MalformedXML', 'The XML you provided was not well-formed.');

/**
 * A request body's XML as plain objects, read by a maintained parser: no attributes, no DOCTYPE
 * at all, element text exactly as sent (keys may start or end with spaces, and their entities are
 * decoded by `xmlText`, not by the parser, which would drop the references it cannot represent).
 * CDATA sections come back as `{ __cdata }`, which no operation takes as text. `arrays` names the
 * elements that may repeat.
 */
// biome-ignore lint/suspicious/noExplicitAny: the shape is checked by each operation
export function readXml(body: Buffer, arrays: string[]): Record<string, any> {
  const text = body.toString('utf8');
  // A DOCTYPE could declare entities that expand to gigabytes; S3's requests never carry one.
  if (/<!DOCTYPE/i.test(text) || XMLValidator.validate(text) !== true) throw malformed();
  const parser = new XMLParser({
    ignoreAttributes: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    parseTagValue: false,
    trimValues: false,
    processEntities: false,
    cdataPropName: '__cdata',
    isArray: (name) => arrays.includes(name),
  });
  try {
    return parser.parse(text);
  } catch {
    throw malformed();
  }
}

const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * An element's text with XML's five entities and character references decoded, every one of
 * them: a reference to a control character becomes that character (for the caller to refuse), it
 * is never dropped. Anything else after "&" stays as sent; a reference past U+10FFFF is malformed.
 */
export function xmlText(value: unknown): string {
  if (typeof value !== 'string') throw malformed();
  return value.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e[0] !== '#') return NAMED[e] as string;
    const code = e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
    if (!(code <= 0x10ffff)) throw malformed();
    return String.fromCodePoint(code);
  });
}
