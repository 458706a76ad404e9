import type { IncomingMessage } from 'node:http';
import { UNSIGNED_PAYLOAD } from '../auth/sigv4.js';
import { AwsChunkedDecoder } from '../aws-chunked.js';
import type { WriteOptions } from '../disk/objects.js';
import { badRequest, S3Error } from '../errors.js';
import { header, MAX_PUT_BYTES, notImplemented, objectHeaders, type S3Request } from '../request.js';
import { requestBody } from '../request-body.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** PutObject: a plain, or unsigned aws-chunked, body; checked against the digests the client named. */
export async function putObject({ req, res, store, key, payloadHash, access }: S3Request): Promise<void> {
  const body = bodyChecks(req, payloadHash);
  const meta = await store.disk.write(key, requestBody(req), {
    ...objectHeaders(req),
    maxBytes: Math.min(MAX_PUT_BYTES, access.maxObjectBytes ?? MAX_PUT_BYTES),
    ...body.options,
  });
  res.writeHead(200, { ETag: `"${meta.etag}"`, ...body.echo }).end();
}

/**
 * How a PUT body (an object's, or a part's) is read and checked: plain or unsigned aws-chunked, its
 * SHA-256, CRC32 (header or trailer) and MD5 as the client named them; `echo`, the headers the
 * answer repeats.
 */
export function bodyChecks(
  req: IncomingMessage,
  payloadHash: string,
): { options: Pick<WriteOptions, 'decode' | 'sha256' | 'crc32' | 'md5'>; echo: Record<string, string> } {
  let decoder: AwsChunkedDecoder | undefined;
  if (payloadHash === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') {
    decoder = new AwsChunkedDecoder({
      ...decodedLength(req),
      allowedTrailers: announcedTrailers(req),
    });
  } else if (payloadHash.startsWith('STREAMING-')) {
    throw notImplemented('Signed aws-chunked uploads are not supported by the embedded store.');
  } else if (payloadHash !== UNSIGNED_PAYLOAD && !SHA256_HEX.test(payloadHash)) {
    throw badRequest(
      'InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, or a valid sha256 value.',
    );
  }
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-crc32') {
      throw badRequest(
        'InvalidRequest',
        `The embedded store supports only CRC32 checksums, not ${name.slice(15)}.`,
      );
    }
  }
  const crcHeader = header(req, 'x-amz-checksum-crc32');
  const md5 = header(req, 'content-md5');
  const trailers = decoder?.trailers;
  return {
    options: {
      ...(decoder ? { decode: decoder } : {}),
      ...(SHA256_HEX.test(payloadHash) ? { sha256: payloadHash } : {}),
      ...(crcHeader
        ? { crc32: crcHeader }
        : trailers
          ? { crc32: () => trailers.get('x-amz-checksum-crc32') }
          : {}),
      ...(md5 ? { md5 } : {}),
    },
    echo: crcHeader ? { 'x-amz-checksum-crc32': crcHeader } : {},
  };
}

/** x-amz-decoded-content-length: what an aws-chunked body must decode to. */
function decodedLength(req: IncomingMessage): { decodedLength?: number } {
  const value = header(req, 'x-amz-decoded-content-length');
  if (value === undefined) return {};
  if (!/^\d{1,16}$/.test(value))
    throw badRequest('InvalidArgument', 'x-amz-decoded-content-length must be a number of bytes.');
  const bytes = Number(value);
  // Refused before a byte is read rather than once 5 GiB have been.
  if (bytes > MAX_PUT_BYTES) {
    throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      MaxSizeAllowed: MAX_PUT_BYTES,
    });
  }
  return { decodedLength: bytes };
}

/** x-amz-trailer: the trailers an aws-chunked body may end with; only a CRC32 is checked here. */
function announcedTrailers(req: IncomingMessage): Set<string> {
  const names = (header(req, 'x-amz-trailer') ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  for (const name of names) {
    if (name !== 'x-amz-checksum-crc32') {
      throw badRequest('InvalidRequest', `The embedded store supports only CRC32 checksums, not ${name}.`);
    }
  }
  return new Set(names);
}
