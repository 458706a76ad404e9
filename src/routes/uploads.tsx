import { type Context, Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { requireCan, requireUser, signedIn } from '../middleware/session.js';
import { Invalid } from '../services/errors.js';
import { UploadPage } from '../views/upload.js';
import { page } from './render.js';

export const uploadRoutes = new Hono<AppEnv>();
const canUpload = requireCan('image.upload');

// Issues a fresh policy and records it as a pending upload: an intent that expires in 15 minutes,
// invisible to anyone, so this GET changes nothing a user can see.
uploadRoutes.get('/upload', canUpload, async (c) => {
  const { user } = signedIn(c);
  const form = await c.var.services.uploads.presign(user, { from: 'form' });
  return page(c, <UploadPage user={user} form={form} maxBytes={c.var.config.maxUploadBytes} />);
});

uploadRoutes.get('/images/:id/replace', requireUser, async (c) => {
  const { user } = signedIn(c);
  const image = c.var.services.images.getForChange(user, c.req.param('id'));
  const form = await c.var.services.uploads.presign(user, { from: 'form', replacesImageId: image.id });
  return page(
    c,
    <UploadPage user={user} form={form} maxBytes={c.var.config.maxUploadBytes} replacing={image} />,
  );
});

/**
 * For upload.js: one policy per file, answered as JSON. With the file's `size` the policy allows
 * exactly that many bytes; `formKey` (first file only) re-signs the page's own pending upload.
 */
uploadRoutes.post('/uploads/presign', canUpload, async (c) => {
  const { user } = signedIn(c);
  const body = await jsonBody(c.req.raw);
  if (body.size !== undefined && !(Number.isSafeInteger(body.size) && (body.size as number) > 0)) {
    throw new Invalid('The file size must be a whole number of bytes, more than zero.');
  }
  const form = await c.var.services.uploads.presign(user, {
    from: 'script',
    originalName: typeof body.name === 'string' ? body.name : '',
    ...(typeof body.replaces === 'string' && body.replaces ? { replacesImageId: body.replaces } : {}),
    ...(typeof body.size === 'number' ? { size: body.size } : {}),
    ...(typeof body.formKey === 'string' && body.formKey.length <= 200 ? { formKey: body.formKey } : {}),
  });
  return c.json(form);
});

// The bucket's success_action_redirect lands here: the one state-changing GET, idempotent, and it
// only ever completes a pending upload of the signed-in user.
uploadRoutes.get('/uploads/complete', requireUser, async (c) => {
  // The bucket adds the stored file's ETag: a second file through the same form is told apart by it.
  const etag = c.req.query('etag');
  const { imageId, replaced } = await complete(c, c.req.query('key') ?? '', etag?.slice(0, 100));
  return c.redirect(`/images/${imageId}?${replaced ? 'replaced' : 'uploaded'}=1`, 303);
});

// upload.js names the file by the ETag the bucket answered it, as the bucket's redirect does.
uploadRoutes.post('/uploads/complete', requireUser, async (c) => {
  const body = await jsonBody(c.req.raw);
  const etag = typeof body.etag === 'string' ? body.etag.slice(0, 100) : undefined;
  const result = await complete(c, typeof body.key === 'string' ? body.key : '', etag);
  return c.json({ imageId: result.imageId, replaced: result.replaced, url: `/images/${result.imageId}` });
});

function complete(c: Context<AppEnv>, key: string, etag?: string) {
  const { user, actor } = signedIn(c);
  return c.var.services.uploads.complete(user, key, { actor, ...(etag ? { etag } : {}) });
}

async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  try {
    const body: unknown = await req.json();
    if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // fall through to the same answer as a non-object body
  }
  throw new Invalid('Send a JSON object.');
}
