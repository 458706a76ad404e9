import type { IncomingMessage } from 'node:http';
import type { QueryPairs } from './auth/sigv4.js';
import { copyObject } from './operations/copy-object.js';
import { deleteObject } from './operations/delete-object.js';
import { deleteObjects } from './operations/delete-objects.js';
import { getBucketLocation } from './operations/get-bucket-location.js';
import { getObject, headObject } from './operations/get-object.js';
import { headBucket } from './operations/head-bucket.js';
import { listObjectsV1 } from './operations/list-objects-v1.js';
import { listObjectsV2 } from './operations/list-objects-v2.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
  uploadPartCopy,
} from './operations/multipart.js';
import { postObject } from './operations/post-object.js';
import { putObject } from './operations/put-object.js';
import type { S3Request } from './request.js';

type Operation = (r: S3Request) => Promise<void>;

interface Route {
  /** the operation as S3's server access log names it */
  name: string;
  method: string;
  /** on the bucket itself, or on one object in it */
  on: 'bucket' | 'object';
  /** further conditions on the query and headers */
  when?: (query: QueryPairs, req: IncomingMessage) => boolean;
  /** PostObject carries its authentication in the body: no header or query signature */
  signedInBody?: true;
  /** the query parameters an object operation takes (any other names an operation the store lacks) */
  params?: readonly string[];
  /**
   * What a key limited to prefixes (see KeyGrant) may do here: `bucket`, anything (the bucket's
   * own facts); `list`, list under its read prefix (the `prefix` asked must start with it); `read`
   * and `write`, the object named; `write-each`, the objects a body names, each checked by the
   * operation (a key that writes nothing is refused at once). A form post checks its key itself.
   */
  access: 'bucket' | 'list' | 'read' | 'write' | 'write-each';
  operation: Operation;
}

const has = (query: QueryPairs, name: string) => query.some(([k]) => k === name);
/** Query parameters a ListObjects (v1) takes: a bucket GET with any other names another operation. */
const LIST_V1_PARAMS = new Set(['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type']);
const isListV1 = (q: QueryPairs) => subresources(q).every(([k]) => LIST_V1_PARAMS.has(k));
const MULTIPART_PART = ['partNumber', 'uploadId'];

/** Every operation the store implements; anything else is refused (501, or 405 for a method on an object). */
const ROUTES: readonly Route[] = [
  {
    method: 'POST',
    on: 'bucket',
    when: (q, req) => !has(q, 'delete') && !req.headers.authorization,
    signedInBody: true,
    operation: postObject,
    name: 'REST.POST.OBJECT',
    access: 'write',
  },
  {
    method: 'HEAD',
    on: 'bucket',
    when: (q) => q.length === 0,
    operation: headBucket,
    name: 'REST.HEAD.BUCKET',
    access: 'bucket',
  },
  {
    method: 'GET',
    on: 'bucket',
    when: (q) => q.some(([k, v]) => k === 'list-type' && v === '2'),
    operation: listObjectsV2,
    name: 'REST.GET.BUCKET',
    access: 'list',
  },
  {
    method: 'GET',
    on: 'bucket',
    when: (q) => has(q, 'uploads'),
    operation: listMultipartUploads,
    name: 'REST.GET.UPLOADS',
    access: 'list',
  },
  {
    method: 'GET',
    on: 'bucket',
    when: (q) => has(q, 'location'),
    operation: getBucketLocation,
    name: 'REST.GET.LOCATION',
    access: 'bucket',
  },
  {
    method: 'GET',
    on: 'bucket',
    when: isListV1,
    operation: listObjectsV1,
    name: 'REST.GET.BUCKET',
    access: 'list',
  },
  {
    method: 'POST',
    on: 'bucket',
    when: (q) => has(q, 'delete'),
    operation: deleteObjects,
    name: 'REST.POST.MULTI_OBJECT_DELETE',
    access: 'write-each',
  },
  // Multipart: the query names the operation, the copy-source header tells a part's copy from its bytes.
  {
    method: 'POST',
    on: 'object',
    when: (q) => has(q, 'uploads'),
    params: ['uploads'],
    operation: createMultipartUpload,
    name: 'REST.POST.UPLOADS',
    access: 'write',
  },
  {
    method: 'POST',
    on: 'object',
    when: (q) => has(q, 'uploadId'),
    params: ['uploadId'],
    operation: completeMultipartUpload,
    name: 'REST.POST.UPLOAD',
    access: 'write',
  },
  {
    method: 'PUT',
    on: 'object',
    when: (q, req) => has(q, 'uploadId') && req.headers['x-amz-copy-source'] !== undefined,
    params: MULTIPART_PART,
    operation: uploadPartCopy,
    name: 'REST.COPY.PART',
    access: 'write',
  },
  {
    method: 'PUT',
    on: 'object',
    when: (q) => has(q, 'uploadId'),
    params: MULTIPART_PART,
    operation: uploadPart,
    name: 'REST.PUT.PART',
    access: 'write',
  },
  {
    method: 'DELETE',
    on: 'object',
    when: (q) => has(q, 'uploadId'),
    params: ['uploadId'],
    operation: abortMultipartUpload,
    name: 'REST.DELETE.UPLOAD',
    access: 'write',
  },
  {
    method: 'GET',
    on: 'object',
    when: (q) => has(q, 'uploadId'),
    params: ['uploadId', 'max-parts', 'part-number-marker'],
    operation: listParts,
    name: 'REST.GET.UPLOAD',
    access: 'read',
  },
  {
    method: 'PUT',
    on: 'object',
    when: (_q, req) => req.headers['x-amz-copy-source'] !== undefined,
    operation: copyObject,
    name: 'REST.COPY.OBJECT',
    access: 'write',
  },
  { method: 'PUT', on: 'object', operation: putObject, name: 'REST.PUT.OBJECT', access: 'write' },
  { method: 'GET', on: 'object', operation: getObject, name: 'REST.GET.OBJECT', access: 'read' },
  { method: 'HEAD', on: 'object', operation: headObject, name: 'REST.HEAD.OBJECT', access: 'read' },
  { method: 'DELETE', on: 'object', operation: deleteObject, name: 'REST.DELETE.OBJECT', access: 'write' },
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
