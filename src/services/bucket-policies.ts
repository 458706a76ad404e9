/** The bucket settings the app needs, as JSON to paste into AWS (or any S3 that takes the same shapes). */

const USER_ID = /^[a-z0-9]{8,64}$/;

/**
 * Least privilege for the app: objects under users/ only, and listing only that prefix. The app's
 * health probe lists users/ too, so nothing it does needs more than this.
 */
export function appIamPolicy(bucket: string) {
  return prefixPolicy(bucket, 'users/');
}

/** For an outside uploader with the AWS CLI: their own prefix and nothing else. */
export function userIamPolicy(bucket: string, userId: string) {
  if (!USER_ID.test(userId))
    throw new Error(`"${userId}" is not a user id (see Admin → Manage, or the gallery URL).`);
  return prefixPolicy(bucket, `users/${userId}/`);
}

function prefixPolicy(bucket: string, prefix: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        // Multipart uploads (large browser uploads, the AWS CLI's large files) need the two besides.
        Action: [
          's3:PutObject',
          's3:GetObject',
          's3:DeleteObject',
          's3:AbortMultipartUpload',
          's3:ListMultipartUploadParts',
        ],
        Resource: `arn:aws:s3:::${bucket}/${prefix}*`,
      },
      {
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: `arn:aws:s3:::${bucket}`,
        Condition: { StringLike: { 's3:prefix': [`${prefix}*`] } },
      },
    ],
  };
}

/** Browsers post uploads to the bucket from the app's pages and load images from it. */
export function corsConfiguration(appOrigin: string) {
  return {
    CORSRules: [
      {
        AllowedOrigins: [appOrigin],
        // PUT: the parts of a large upload (upload.js).
        AllowedMethods: ['GET', 'HEAD', 'POST', 'PUT'],
        AllowedHeaders: ['*'],
        ExposeHeaders: ['ETag'],
        MaxAgeSeconds: 3600,
      },
    ],
  };
}
