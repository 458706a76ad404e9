import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { ObjectMeta } from './disk/objects.js';
import { S3Error } from './errors.js';

/** Form fields S3 turns into headers of the stored object. */
const STORED_FIELD =
  /^(content-type|cache-control|content-disposition|content-encoding|expires|x-amz-meta-.*)$/;

/** Whether an HTTP response can carry this header: Node's own rule, the one writeHead enforces. */
function isSendable(name: string, value: string): boolean {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses a value that could not be sent back (CR, LF, other control characters, characters
 * beyond ISO-8859-1): stored, it would make every later GET and HEAD of the object fail.
 */
export function requireSendable(name: string, value: string): void {
  if (isSendable(name, value)) return;
  const isNameValid = isSendable(name, '');
  throw new S3Error(
    400,
    'InvalidArgument',
    isNameValid
      ? `Header value cannot be represented in an HTTP response: ${name}.`
      : 'A header or form field name is not a valid HTTP token.',
    isNameValid ? { ArgumentName: name } : {},
  );
}

/** Checks the fields of a form upload that become headers of the object, whether stored or not. */
export function requireSendableFields(fields: Map<string, string>): void {
  for (const [name, value] of fields) if (STORED_FIELD.test(name)) requireSendable(name, value);
}

/** Checks an object's type and user metadata before they are stored. */
export function requireSendableMeta(contentType: string, metadata: Record<string, string>): void {
  requireSendable('content-type', contentType);
  for (const [name, value] of Object.entries(metadata)) requireSendable(`x-amz-meta-${name}`, value);
}

/**
 * The stored headers GET and HEAD send. A value an older version stored unchecked is left out
 * rather than failing every answer; S3 counts left-out metadata in x-amz-missing-meta.
 */
export function servedHeaders(meta: ObjectMeta): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': isSendable('content-type', meta.contentType) ? meta.contentType : 'binary/octet-stream',
  };
  let missing = 0;
  for (const [name, value] of Object.entries(meta.metadata)) {
    if (isSendable(`x-amz-meta-${name}`, value)) headers[`x-amz-meta-${name}`] = value;
    else missing++;
  }
  if (missing > 0) headers['x-amz-missing-meta'] = String(missing);
  return headers;
}
