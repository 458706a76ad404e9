/**
 * The baseline: a gallery written the way the Flask + boto3 apps we replace work. Every page view
 * lists the bucket (one ListObjectsV2 call, so at most 1,000 keys) and presigns every key it got.
 */
import http from 'node:http';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const client = new S3Client({
  endpoint: env('NAIVE_ENDPOINT'),
  region: env('NAIVE_REGION'),
  forcePathStyle: true,
  credentials: { accessKeyId: env('NAIVE_KEY'), secretAccessKey: env('NAIVE_SECRET') },
});
const Bucket = env('NAIVE_BUCKET');
const Prefix = env('NAIVE_PREFIX');

http
  .createServer(async (_req, res) => {
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix }));
      const urls = await Promise.all(
        (listed.Contents ?? []).map((o) =>
          getSignedUrl(client, new GetObjectCommand({ Bucket, Key: o.Key }), { expiresIn: 3600 }),
        ),
      );
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(
        `<!DOCTYPE html><ul>${urls.map((u) => `<li><img src="${u.replaceAll('&', '&amp;')}"></li>`).join('')}</ul>`,
      );
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  })
  .listen(Number(env('NAIVE_PORT')), '127.0.0.1', () => console.log('listening'));
