import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import zlib from 'node:zlib';
import { requireAccess } from '../auth/sigv4.js';
import { badRequest, S3Error, sendXml, xmlElements, xmlEscape } from '../errors.js';
import { header, readBody, type S3Request, validateKey } from '../request.js';
import { readXml, xmlText } from '../xml.js';

const MAX_XML_BYTES = 1024 * 1024;
const MAX_KEYS = 1000;

/** DeleteObjects: up to 1000 keys in one XML body, which must carry a matching MD5 or CRC32. */
export async function deleteObjects({ req, res, store, access }: S3Request): Promise<void> {
  const body = await readBody(req, MAX_XML_BYTES);
  checkDigest(req, body);
  const request = readXml(body, ['Object']).Delete;
  // One <Delete> holding <Object>s of one <Key> each, and at most one <Quiet>.
  if (typeof request !== 'object' || request === null || Array.isArray(request.Quiet)) {
    throw badRequest('MalformedXML', 'The XML you provided was not well-formed.');
  }
  const objects: unknown[] = request.Object ?? [];
  const keys = objects.map((o) => xmlText((o as { Key?: unknown } | null)?.Key));
  if (keys.length > MAX_KEYS)
    throw badRequest('MalformedXML', `You may delete at most ${MAX_KEYS} objects at once.`);
  const quiet =
    xmlText(request.Quiet ?? '')
      .trim()
      .toLowerCase() === 'true';
  const deleted: string[] = [];
  const errors: string[] = [];
  for (const key of keys) {
    try {
      requireAccess(access, key, 'write');
      await store.disk.delete(validateKey(key));
      deleted.push(key);
    } catch (err) {
      const e =
        err instanceof S3Error ? err : new S3Error(500, 'InternalError', 'We encountered an internal error.');
      errors.push(`<Error>${xmlElements({ Key: key, Code: e.code, Message: e.message })}</Error>`);
    }
  }
  const deletedXml = quiet
    ? ''
    : deleted.map((k) => `<Deleted><Key>${xmlEscape(k)}</Key></Deleted>`).join('');
  sendXml(
    res,
    200,
    `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${deletedXml}${errors.join('')}</DeleteResult>`,
  );
}

function checkDigest(req: IncomingMessage, body: Buffer): void {
  const crc = header(req, 'x-amz-checksum-crc32');
  const md5 = header(req, 'content-md5');
  if (crc !== undefined) {
    const expected = Buffer.alloc(4);
    expected.writeUInt32BE(zlib.crc32(body) >>> 0);
    if (expected.toString('base64') !== crc)
      throw badRequest('BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
  } else if (md5 !== undefined) {
    if (createHash('md5').update(body).digest('base64') !== md5)
      throw badRequest('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  } else {
    throw badRequest('InvalidRequest', 'Missing required header for this request: Content-MD5');
  }
}
