import type { S3Request } from '../request.js';

/** HeadBucket: the bucket exists (the router checked its name) and the caller's signature holds. */
export async function headBucket({ res, requestId }: S3Request): Promise<void> {
  res.writeHead(200, { 'x-amz-request-id': requestId }).end();
}
