import { S3Error } from './errors.js';

/** What S3 names server-side encryption by: `x-amz-server-side-encryption` itself, KMS and SSE-C. */
const ENCRYPTION = /^x-amz-(copy-source-)?server-side-encryption/;
const KNOWN = new Set(['AES256', 'aws:kms', 'aws:kms:dsse']);

/**
 * Refuses a request (headers, or a form's fields) that asks for server-side encryption, which this
 * store does not do: a client must never believe its data is encrypted when it is not. An unknown
 * method is `400 InvalidArgument`, as S3 answers; a known one (SSE-S3, SSE-KMS, SSE-C) is
 * `501 NotImplemented`, as MinIO and Swift answer one they lack.
 */
export function refuseEncryption(
  names: Iterable<string>,
  valueNamed: (name: string) => string | undefined,
): void {
  for (const name of names) {
    if (!ENCRYPTION.test(name)) continue;
    const method = valueNamed('x-amz-server-side-encryption');
    if (method !== undefined && !KNOWN.has(method)) {
      throw new S3Error(400, 'InvalidArgument', 'The encryption method specified is not supported', {
        ArgumentName: 'x-amz-server-side-encryption',
        ArgumentValue: method,
      });
    }
    throw new S3Error(
      501,
      'NotImplemented',
      'A header you provided implies functionality that is not implemented: the embedded store does not encrypt objects (server-side encryption).',
      { Header: name },
    );
  }
}
