import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv, SignedInEnv } from '../env.js';
import { answerRefusal } from '../http-errors.js';
import { clientIp } from '../middleware/client-ip.js';
import { actorOf, requireCan, requireUser } from '../middleware/session.js';
import { type ImageCursor, imageCursor } from '../services/cursors.js';
import { DomainError, Gone, Invalid, NotFound, Throttled, Unauthenticated } from '../services/errors.js';
import { parseExpiry } from '../services/shares.js';
import {
  PublicSharePage,
  SharedNextFigures,
  ShareGonePage,
  SharePasswordPage,
  ShareSelectionPage,
  SharesPage,
} from '../views/shares.js';
import { auditShareDownload, auditShareOpen, auditThrottled } from './audit.js';
import { readDeviceCookie, setDeviceCookie } from './device-cookie.js';
import { redirectShowingLink, takeNewLink } from './new-link.js';
import { nothingSelected, noticeOf, withNotice } from './notices.js';
import { fragment, page, safeNext } from './render.js';
import { cursor, flag, form, query, selectedIds, text, tickedIds } from './validate.js';

/** The owner's side of share links (`/shares/...`): making, listing and revoking them. */
export const shareRoutes = new Hono<SignedInEnv>().use(requireUser);

/** What a link's recipient opens (`/s/<token>`): no session needed. */
export const publicShareRoutes = new Hono<AppEnv>();

/** The options of a new link, as the share forms send them (POST /shares, POST /images/:id/shares). */
export const shareForm = z.object({
  expiry: text,
  password: text,
  // What visitors may download: 'copy' (a full-size copy without location) or 'original'; anything
  // else, nothing. (allow_download=1, the form's older field, means a copy.)
  download: text,
  allow_download: flag,
});

/** A share form's download choice, as the service takes it. */
export const downloadOption = (form: { download: string; allow_download: boolean }) => ({
  allowDownload: form.download === 'copy' || form.download === 'original' || form.allow_download,
  original: form.download === 'original',
});

/** Makes a link to the images; its id and token, to show once (see new-link.ts). */
export async function createLink(
  c: Context<SignedInEnv>,
  ids: string[],
  options: z.output<typeof shareForm>,
): Promise<{ id: string; token: string }> {
  const { token, link } = await c.var.services.shares.create(actorOf(c), ids, {
    expiry: parseExpiry(options.expiry),
    password: options.password,
    ...downloadOption(options),
  });
  return { id: link.id, token };
}

async function linksPage(
  c: Context<SignedInEnv>,
  extra: { newUrl?: string | undefined; notice?: string | undefined } = {},
) {
  const { user, services } = c.var;
  const { shares } = services;
  const rows = (await shares.listForOwner(user)).map((link) => ({ link, state: shares.stateOf(link) }));
  return page(c, <SharesPage user={user} rows={rows} {...extra} />);
}

shareRoutes.get('/', requireCan('share.create'), async (c) =>
  linksPage(c, { newUrl: await takeNewLink(c), notice: noticeOf(c, { revoked: 'Link revoked.' }) }),
);

/** Options for sharing what was selected in the gallery. */
shareRoutes.post(
  '/new',
  requireCan('share.create'),
  form(z.object({ ids: tickedIds, back: text })),
  async (c) => {
    const { ids, back } = c.req.valid('form');
    if (ids.length === 0) return c.redirect(nothingSelected(back, c.var.config.appOrigin), 303);
    const images = await c.var.services.images.getAllForChange(c.var.user, ids);
    return page(c, <ShareSelectionPage user={c.var.user} images={images} />);
  },
);

shareRoutes.post('/', requireCan('share.create'), form(shareForm.extend({ ids: selectedIds })), async (c) => {
  const { ids, ...options } = c.req.valid('form');
  try {
    return redirectShowingLink(c, await createLink(c, ids, options), '/shares');
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    const images = await c.var.services.images.getAllForChange(c.var.user, ids);
    return page(c, <ShareSelectionPage user={c.var.user} images={images} error={err.message} />, 400);
  }
});

shareRoutes.post('/:id/revoke', form(z.object({ back: text })), async (c) => {
  await c.var.services.shares.revoke(actorOf(c), c.req.param('id'));
  const back = safeNext(c.req.valid('form').back, c.var.config.appOrigin);
  return c.redirect(back === '/' ? withNotice('/shares', 'revoked') : back, 303);
});

// Nothing leaks through the referrer, search engines stay out.
publicShareRoutes.use(async (c, next) => {
  await next();
  c.header('Referrer-Policy', 'no-referrer');
  c.header('X-Robots-Tag', 'noindex, nofollow');
  c.header('Cache-Control', 'no-store');
});

/** A link's page: its first, or with `after` a further page of an album's (htmx: just its pictures). */
async function openShare(c: Context<AppEnv>, password?: string, after: ImageCursor | null = null) {
  const token = c.req.param('token') ?? '';
  const action = `/s/${token}`;
  try {
    const result = await c.var.services.shares.open(
      token,
      password,
      { ip: clientIp(c), deviceToken: readDeviceCookie(c, 'link') },
      after,
    );
    if (result.kind === 'needs-password') return page(c, <SharePasswordPage action={action} />);
    if (result.further && c.req.header('HX-Request'))
      return fragment(c, <SharedNextFigures view={result.view} token={token} />);
    if (result.deviceToken) setDeviceCookie(c, 'link', action, result.deviceToken);
    if (!result.further) await auditShareOpen(c, result.view.link.id);
    return page(c, <PublicSharePage view={result.view} token={token} />);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const status = answerRefusal(c, err);
    if (err instanceof Throttled) await auditThrottled(c, 'share link');
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

publicShareRoutes.get('/:token', query(z.object(cursor(imageCursor))), (c) =>
  openShare(c, undefined, c.req.valid('query').cursor),
);

/**
 * One picture of the link as a full-size copy without location (the link's download unless it
 * gives originals): 303 to a short-lived download of it, made on its first download. A browser
 * that has not given the link's password goes to the link's page, which asks for it.
 */
publicShareRoutes.get('/:token/download/:id', async (c) => {
  const token = c.req.param('token');
  try {
    const { url, linkId } = await c.var.services.shares.downloadCopy(token, c.req.param('id'), {
      deviceToken: readDeviceCookie(c, 'link'),
    });
    await auditShareDownload(c, linkId);
    return c.redirect(url, 303);
  } catch (err) {
    if (err instanceof Unauthenticated) return c.redirect(`/s/${encodeURIComponent(token)}`, 303);
    if (!(err instanceof NotFound || err instanceof Gone)) throw err;
    const title = err instanceof NotFound ? 'Download not found' : 'This link no longer works';
    return page(c, <ShareGonePage title={title} message={err.message} />, answerRefusal(c, err));
  }
});

publicShareRoutes.post('/:token', form(z.object({ password: text })), (c) =>
  openShare(c, c.req.valid('form').password),
);
