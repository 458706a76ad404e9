import type { S3Request } from '../request.js';

/** DeleteObject: 204 whether or not the key existed, as S3 answers. */
export async function deleteObject({ res, store, key, requestId }: S3Request): Promise<void> {
  await store.disk.delete(key);
  res.writeHead(204, { 'x-amz-request-id': requestId }).end();
}
