import { expect, vi } from 'vitest';
import { isImageType } from '../../src/image-types.js';
import type { Services } from '../../src/services/index.js';
import type { Client, TestApp } from './app.js';

export interface Policy {
  key: string;
  url: string;
  fields: Record<string, string>;
}

/** The browser's form post straight to the bucket: the policy's fields, the type, then the file. */
export function postToBucket(policy: Policy, bytes: Buffer, type: string, name: string) {
  const form = new FormData();
  for (const [k, v] of Object.entries(policy.fields)) form.append(k, v);
  form.append('Content-Type', type);
  form.append('file', new Blob([new Uint8Array(bytes)], { type }), name);
  return fetch(policy.url, { method: 'POST', body: form });
}

/** What upload.js does: a policy per file, the bytes straight to the bucket, then completion. */
export async function uploadWithJs(
  client: Client,
  bytes: Buffer,
  name: string,
  type: string,
  replaces?: string,
) {
  const presign = await client.postJson('/uploads/presign', {
    name,
    size: bytes.length,
    ...(replaces ? { replaces } : {}),
  });
  expect(presign.status).toBe(200);
  const policy = (await presign.json()) as Policy;
  const stored = await postToBucket(policy, bytes, type, name);
  expect(stored.status, await stored.clone().text()).toBe(201);
  const done = await client.postJson('/uploads/complete', { key: policy.key });
  return { policy, done };
}

export async function upload(client: Client, bytes: Buffer, name = 'photo.jpg', type = 'image/jpeg') {
  const { done } = await uploadWithJs(client, bytes, name, type);
  expect(done.status, await done.clone().text()).toBe(200);
  return ((await done.json()) as { imageId: string }).imageId;
}

/** Delete as a person does it for good: to the trash (the image's Delete), then "Delete forever" there. */
export async function deleteForGood(client: Client, id: string) {
  const trashed = await client.post(`/images/${id}/delete`);
  expect(trashed.status, await trashed.clone().text()).toBe(303);
  const gone = await client.post('/trash/delete', { ids: id, confirm: 'yes' });
  expect(gone.status, await gone.clone().text()).toBe(303);
}

/**
 * Waits until every answered upload's original has been copied into place (the completion starts
 * that once it has answered): from then on a replay of its policy can no longer take its place.
 */
export async function untilOriginalsStored(t: Pick<TestApp, 'count'>) {
  await vi.waitFor(async () => expect(await t.count('images', 'staged_key IS NOT NULL')).toBe(0), {
    timeout: 10_000,
  });
}

/** Every object under the user's prefix is one an image row names, and every key a row names is there. */
export async function expectBucketMatchesRows(
  services: Pick<Services, 'database' | 'storage' | 'jobs'>,
  ownerId: string,
) {
  // Renditions are made in the background: compare once they are.
  await services.jobs.drain();
  const rows = await services.database.q
    .selectFrom('images')
    .select(['original_key', 'display_key', 'thumb_key', 'state', 'content_type'])
    .where('owner_id', '=', ownerId)
    .execute();
  const listed = (await services.storage.list(`users/${ownerId}/`)).keys.map((k) => k.key).sort();
  // An image whose processing failed has its original only, as has any other file (ACCEPT=any).
  const named = rows.flatMap((r) =>
    r.state === 'ready' && isImageType(r.content_type)
      ? [r.original_key, r.display_key, r.thumb_key]
      : [r.original_key],
  );
  expect(listed).toEqual(named.sort());
  return rows;
}
