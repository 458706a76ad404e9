import { sendXml, xmlEscape } from '../errors.js';
import type { S3Request } from '../request.js';

/** GetBucketLocation: the region as the root element's text, empty for us-east-1 (as S3 answers). */
export async function getBucketLocation({ res, store }: S3Request): Promise<void> {
  const region = store.region === 'us-east-1' ? '' : store.region;
  sendXml(
    res,
    200,
    region
      ? `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xmlEscape(region)}</LocationConstraint>`
      : '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>',
  );
}
