import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { SignedInEnv } from '../env.js';
import { answerRefusal } from '../http-errors.js';
import { actorOf, requireCan, requireUser } from '../middleware/session.js';
import { DomainError } from '../services/errors.js';
import type { Image } from '../services/images.js';
import type { Completion } from '../services/uploads.js';
import { UploadPage, UploadUsage } from '../views/upload.js';
import { withNotice } from './notices.js';
import { fragment, page } from './render.js';
import { json, query, text } from './validate.js';

/** The upload page (`/upload`); its twin for replacing one image's file is GET /images/:id/replace. */
export const uploadPageRoutes = new Hono<SignedInEnv>().use(requireCan('image.upload'));

/** What upload.js and the bucket's redirect call (`/uploads/...`). */
export const uploadRoutes = new Hono<SignedInEnv>().use(requireUser);

/**
 * The upload page, for new images or to replace one. Issues a fresh policy and records it as a
 * pending upload: an intent that expires in 15 minutes, invisible to anyone, so this GET changes
 * nothing a user can see.
 */
export async function renderUploadPage(c: Context<SignedInEnv>, replacing?: Image) {
  const { user, services } = c.var;
  // A full quota (or too many unfinished uploads) is said on the page itself, with the numbers.
  // ?new=1: the refusal page of a form that had sent a file already asks for one of this visit's own.
  const fresh = c.req.query('new') === '1';
  const presigned = await services.uploads
    .presign(user, { from: 'form', fresh, ...(replacing ? { replacesImageId: replacing.id } : {}) })
    .then(
      (form) => ({ form }),
      (err: unknown) => {
        if (!(err instanceof DomainError)) throw err;
        return { refusal: err.message, status: answerRefusal(c, err) };
      },
    );
  // The meter is of the account the upload counts against: shown for one's own images.
  const isOwn = !replacing || replacing.ownerId === user.id;
  const usage = isOwn ? await services.images.usage(user.id) : undefined;
  return page(
    c,
    <UploadPage
      user={user}
      maxBytes={c.var.config.maxUploadBytes}
      accept={c.var.config.accept}
      {...presigned}
      {...(usage ? { usage } : {})}
      {...(replacing ? { replacing } : {})}
    />,
    'status' in presigned ? presigned.status : 200,
  );
}

uploadPageRoutes.get('/', (c) => renderUploadPage(c));

/** The upload page's usage meter again, for upload.js to swap in once a round of uploads has ended. */
uploadPageRoutes.get('/usage', async (c) => {
  const { user, services } = c.var;
  return fragment(c, <UploadUsage user={user} usage={await services.images.usage(user.id)} />);
});

/** An optional string field of a JSON body: anything else counts as absent. */
const optionalString = (keep: (value: string) => boolean) =>
  z
    .unknown()
    .optional()
    .transform((value) => (typeof value === 'string' && keep(value) ? value : undefined));

/** The ETag the bucket gave a stored file: it tells a second file through the same form apart. */
const etag = optionalString(() => true).transform((value) => value?.slice(0, 100));

/**
 * For upload.js: one policy per file, answered as JSON. With the file's `size` the policy allows
 * exactly that many bytes; `formKey` (first file only) re-signs the page's own pending upload.
 * The guest page's upload.js sends the same (its `replaces` is not read).
 */
export const presignBody = z.object(
  {
    name: optionalString(() => true).transform((value) => value ?? ''),
    size: z
      .int({ error: 'The file size must be a whole number of bytes, more than zero.' })
      .positive({ error: 'The file size must be a whole number of bytes, more than zero.' })
      .optional(),
    replaces: optionalString((value) => value !== ''),
    formKey: optionalString((value) => value.length <= 200),
  },
  { error: 'Send a JSON object.' },
);

uploadRoutes.post('/presign', requireCan('image.upload'), json(presignBody), async (c) => {
  const body = c.req.valid('json');
  const form = await c.var.services.uploads.presign(c.var.user, {
    from: 'script',
    originalName: body.name,
    ...(body.replaces ? { replacesImageId: body.replaces } : {}),
    ...(body.size !== undefined ? { size: body.size } : {}),
    ...(body.formKey !== undefined ? { formKey: body.formKey } : {}),
  });
  return c.json(form);
});

/** A large file from upload.js, sent in parts (src/services/upload-parts.ts). */
const startPartsBody = z.object(
  {
    name: optionalString(() => true).transform((value) => value ?? ''),
    size: z
      .int({ error: 'The file size must be a whole number of bytes, more than zero.' })
      .positive({ error: 'The file size must be a whole number of bytes, more than zero.' }),
    type: optionalString((value) => value.length <= 100).transform((value) => value ?? ''),
    replaces: optionalString((value) => value !== ''),
  },
  { error: 'Send a JSON object.' },
);

uploadRoutes.post('/parts/start', requireCan('image.upload'), json(startPartsBody), async (c) => {
  const body = c.req.valid('json');
  const started = await c.var.services.uploadParts.start(c.var.user, {
    name: body.name,
    size: body.size,
    type: body.type,
    ...(body.replaces ? { replacesImageId: body.replaces } : {}),
  });
  return c.json(started);
});

const partBody = z.object(
  {
    key: optionalString(() => true).transform((value) => value ?? ''),
    part: z.int({ error: 'The part number must be a whole number.' }),
  },
  { error: 'Send a JSON object.' },
);

uploadRoutes.post('/parts/url', requireCan('image.upload'), json(partBody), async (c) => {
  const { key, part } = c.req.valid('json');
  return c.json(await c.var.services.uploadParts.partUrl(c.var.user, key, part));
});

// The bucket's success_action_redirect lands here: the one state-changing GET, idempotent, and it
// only ever completes a pending upload of the signed-in user. The bucket adds the stored file's ETag.
uploadRoutes.get(
  '/complete',
  query(z.object({ key: text, etag: text.transform((value) => value.slice(0, 100)) })),
  async (c) => {
    const { key, etag } = c.req.valid('query');
    const { imageId, replaced } = await complete(c, key, etag);
    return c.redirect(withNotice(`/images/${imageId}`, replaced ? 'replaced' : 'uploaded'), 303);
  },
);

// upload.js names the file by the ETag the bucket answered it, as the bucket's redirect does.
export const completeBody = z.object(
  { key: optionalString(() => true).transform((value) => value ?? ''), etag },
  { error: 'Send a JSON object.' },
);

uploadRoutes.post('/complete', json(completeBody), async (c) => {
  const { key, etag } = c.req.valid('json');
  const result = await complete(c, key, etag);
  return c.json(answerOf(result));
});

uploadRoutes.post('/parts/finish', json(completeBody.pick({ key: true })), async (c) => {
  const result = await c.var.services.uploadParts.finish(c.var.user, c.req.valid('json').key, actorOf(c));
  return c.json(answerOf(result));
});

// upload.js gives up an upload its user cancelled, or sends again under a new policy.
uploadRoutes.post('/abandon', json(completeBody.pick({ key: true })), async (c) => {
  await c.var.services.uploads.abandon(c.var.user, c.req.valid('json').key);
  return c.body(null, 204);
});

/** What upload.js is told of a completed upload. */
const answerOf = (result: Completion) => ({
  imageId: result.imageId,
  replaced: result.replaced,
  url: `/images/${result.imageId}`,
});

function complete(c: Context<SignedInEnv>, key: string, etag: string | undefined) {
  return c.var.services.uploads.complete(c.var.user, key, { actor: actorOf(c), ...(etag ? { etag } : {}) });
}
