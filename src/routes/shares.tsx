import { type Context, Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { answerRefusal } from '../http-errors.js';
import { clientIp } from '../middleware/client-ip.js';
import { requireCan, requireUser, signedIn } from '../middleware/session.js';
import { imageCursor, readCursor } from '../services/cursors.js';
import { DomainError, Gone, Invalid, NotFound, Throttled, Unauthenticated } from '../services/errors.js';
import { parseExpiry } from '../services/shares.js';
import type { User } from '../services/users.js';
import { GalleryCards, SharedGalleryPage } from '../views/gallery.js';
import {
  PublicSharePage,
  ShareGonePage,
  SharePasswordPage,
  ShareSelectionPage,
  SharesPage,
} from '../views/shares.js';
import { auditShareOpen, auditThrottled } from './audit.js';
import { readDeviceCookie, setDeviceCookie } from './device-cookie.js';
import { renderImage } from './images.js';
import { formFields, fragment, page, safeNext, selectedIds } from './render.js';

export const shareRoutes = new Hono<AppEnv>();
const canShare = requireCan('share.create');

shareRoutes.get('/shared', requireUser, async (c) => {
  const { user } = signedIn(c);
  const after = readCursor(imageCursor, c.req.query('cursor'));
  const result = await c.var.services.images.listShared(after);
  if (c.req.header('HX-Request') && after) {
    return fragment(c, <GalleryCards {...result} basePath="/shared" canChange={false} />);
  }
  return page(c, <SharedGalleryPage user={user} {...result} isFirstPage={!after} />);
});

function linksPage(
  c: Context<AppEnv>,
  user: User,
  extra: { newUrl?: string; notice?: string } = {},
  status: 200 | 201 = 200,
) {
  const { shares } = c.var.services;
  const rows = shares.listForOwner(user).map((link) => ({ link, state: shares.stateOf(link) }));
  return page(c, <SharesPage user={user} rows={rows} {...extra} />, status);
}

shareRoutes.get('/shares', canShare, (c) => {
  const { user } = signedIn(c);
  return linksPage(c, user, c.req.query('revoked') ? { notice: 'Link revoked.' } : {});
});

/** Options for sharing what was selected in the gallery. */
shareRoutes.post('/shares/new', canShare, async (c) => {
  const { user } = signedIn(c);
  const { ids } = await selectedIds(c);
  const images = ids.map((id) => c.var.services.images.getForChange(user, id));
  return page(c, <ShareSelectionPage user={user} images={images} />);
});

async function createLink(c: Context<AppEnv>, ids: string[], form: Record<string, unknown>) {
  const text = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
  const { token } = await c.var.services.shares.create(signedIn(c).actor, ids, {
    expiry: parseExpiry(text('expiry')),
    password: text('password'),
    allowDownload: text('allow_download') === '1',
  });
  return `${c.var.config.appOrigin}/s/${token}`;
}

shareRoutes.post('/shares', canShare, async (c) => {
  const { user } = signedIn(c);
  const { ids, body } = await selectedIds(c);
  try {
    const newUrl = await createLink(c, ids, body);
    return linksPage(c, user, { newUrl }, 201);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    const images = ids.map((id) => c.var.services.images.getForChange(user, id));
    return page(c, <ShareSelectionPage user={user} images={images} error={err.message} />, 400);
  }
});

shareRoutes.post('/images/:id/shares', canShare, async (c) => {
  const { user } = signedIn(c);
  const image = c.var.services.images.getForChange(user, c.req.param('id'));
  const form = await formFields(c);
  try {
    const newShareUrl = await createLink(c, [image.id], form);
    return renderImage(c, user, image, { newShareUrl }, 201);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    return renderImage(c, user, image, { error: err.message }, 400);
  }
});

shareRoutes.post('/shares/:id/revoke', requireUser, async (c) => {
  const form = await formFields(c);
  c.var.services.shares.revoke(signedIn(c).actor, c.req.param('id'));
  const back = safeNext(form.back, c.var.config.appOrigin);
  return c.redirect(back === '/' ? '/shares?revoked=1' : back, 303);
});

// The public side: no session needed, nothing leaks through the referrer, search engines stay out.
shareRoutes.use('/s/*', async (c, next) => {
  await next();
  c.header('Referrer-Policy', 'no-referrer');
  c.header('X-Robots-Tag', 'noindex, nofollow');
  c.header('Cache-Control', 'no-store');
});

async function openShare(c: Context<AppEnv>, password?: string) {
  const token = c.req.param('token') ?? '';
  const action = `/s/${token}`;
  try {
    const result = await c.var.services.shares.open(token, password, {
      ip: clientIp(c),
      deviceToken: readDeviceCookie(c, 'link'),
    });
    if (result.kind === 'needs-password') return page(c, <SharePasswordPage action={action} />);
    if (result.deviceToken) setDeviceCookie(c, 'link', action, result.deviceToken);
    auditShareOpen(c, result.view.link.id);
    return page(c, <PublicSharePage view={result.view} />);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const status = answerRefusal(c, err);
    if (err instanceof Throttled) auditThrottled(c, 'share link');
    if (err instanceof Unauthenticated || err instanceof Throttled) {
      return page(c, <SharePasswordPage action={action} error={err.message} />, status);
    }
    if (err instanceof NotFound || err instanceof Gone) {
      const title = err instanceof NotFound ? 'Link not found' : 'This link no longer works';
      return page(c, <ShareGonePage title={title} message={err.message} />, status);
    }
    throw err;
  }
}

shareRoutes.get('/s/:token', (c) => openShare(c));

shareRoutes.post('/s/:token', async (c) => {
  const form = await formFields(c);
  return openShare(c, form.password ?? '');
});
