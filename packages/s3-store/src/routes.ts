import type { IncomingMessage } from 'node:http';
import type { QueryPairs } from './auth/sigv4.js';
import { copyObject } from './operations/copy-object.js';
import { deleteObject } from './operations/delete-object.js';
import { deleteObjects } from './operations/delete-objects.js';
import { getObject, headObject } from './operations/get-object.js';
import { headBucket } from './operations/head-bucket.js';
import { listObjectsV2 } from './operations/list-objects-v2.js';
import { postObject } from './operations/post-object.js';
import { putObject } from './operations/put-object.js';
import type { S3Request } from './request.js';

type Operation = (r: S3Request) => Promise<void>;

interface Route {
  method: string;
  /** on the bucket itself, or on one object in it */
  on: 'bucket' | 'object';
  /** further conditions on the query and headers */
  when?: (query: QueryPairs, req: IncomingMessage) => boolean;
  /** PostObject carries its authentication in the body: no header or query signature */
  signedInBody?: true;
  operation: Operation;
}

const has = (query: QueryPairs, name: string) => query.some(([k]) => k === name);

/** Every operation the store implements; anything else is refused (501, or 405 for a method on an object). */
const ROUTES: readonly Route[] = [
  {
    method: 'POST',
    on: 'bucket',
    when: (q, req) => !has(q, 'delete') && !req.headers.authorization,
    signedInBody: true,
    operation: postObject,
  },
  { method: 'HEAD', on: 'bucket', when: (q) => q.length === 0, operation: headBucket },
  {
    method: 'GET',
    on: 'bucket',
    when: (q) => q.some(([k, v]) => k === 'list-type' && v === '2'),
    operation: listObjectsV2,
  },
  { method: 'POST', on: 'bucket', when: (q) => has(q, 'delete'), operation: deleteObjects },
  {
    method: 'PUT',
    on: 'object',
    when: (_q, req) => req.headers['x-amz-copy-source'] !== undefined,
    operation: copyObject,
  },
  { method: 'PUT', on: 'object', operation: putObject },
  { method: 'GET', on: 'object', operation: getObject },
  { method: 'HEAD', on: 'object', operation: headObject },
  { method: 'DELETE', on: 'object', operation: deleteObject },
];

/** Object requests with a subresource (`?acl`, `?tagging`, `?uploads`...) name operations the store does not have. */
export function subresources(query: QueryPairs): QueryPairs {
  return query.filter(
    ([k]) => !k.toLowerCase().startsWith('x-amz-') && !k.startsWith('response-') && k !== 'x-id',
  );
}

export function findRoute(
  method: string,
  on: Route['on'],
  query: QueryPairs,
  req: IncomingMessage,
): Route | undefined {
  return ROUTES.find((r) => r.method === method && r.on === on && (r.when?.(query, req) ?? true));
}
