import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { badRequest } from './errors.js';

/**
 * A request body's XML as plain objects, with a maintained parser: element text kept as sent
 * (keys may start or end with spaces), entities and character references decoded, no attributes,
 * no DOCTYPE at all. `arrays` names the elements that may repeat.
 */
// biome-ignore lint/suspicious/noExplicitAny: the shape is checked by each operation
export function readXml(body: Buffer, arrays: string[]): Record<string, any> {
  const text = body.toString('utf8');
  // A DOCTYPE could declare entities that expand to gigabytes; S3's requests never carry one.
  if (/<!DOCTYPE/i.test(text) || XMLValidator.validate(text) !== true) {
    throw badRequest('MalformedXML', 'The XML you provided was not well-formed.');
  }
  const parser = new XMLParser({
    ignoreAttributes: true,
    ignoreDeclaration: true,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    htmlEntities: true,
    isArray: (name) => arrays.includes(name),
  });
  try {
    return parser.parse(text);
  } catch {
    throw badRequest('MalformedXML', 'The XML you provided was not well-formed.');
  }
}
