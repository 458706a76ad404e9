import { type Context, Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import type { AppEnv, SignedInEnv } from '../env.js';
import { answerRefusal } from '../http-errors.js';
import { clientIp } from '../middleware/client-ip.js';
import { actorOf, requireCan, requireUser } from '../middleware/session.js';
import {
  DomainError,
  Gone,
  Invalid,
  NotFound,
  Throttled,
  TooLarge,
  Unauthenticated,
} from '../services/errors.js';
import { GUEST_NAME_MAX } from '../services/guest-links.js';
import { cleanText } from '../services/images.js';
import { parseExpiry } from '../services/shares.js';
import { randomToken } from '../services/tokens.js';
import { GuestLinkImagesPage, GuestLinksPage, GuestUploadPage } from '../views/guest-links.js';
import { ShareGonePage } from '../views/shares.js';
import { auditGuestOpen, auditThrottled } from './audit.js';
import { redirectShowingLink, takeNewLink } from './new-link.js';
import { noticeOf, withNotice } from './notices.js';
import { page } from './render.js';
import { completeBody, presignBody } from './uploads.js';
import { flag, form, json, query, text } from './validate.js';

/** The owner's side (`/guest-links`): making, listing and turning off guest upload links. */
export const guestLinkRoutes = new Hono<SignedInEnv>().use(requireUser).use(requireCan('share.create'));

/** What a guest opens (`/u/<token>`): no session needed. */
export const guestUploadRoutes = new Hono<AppEnv>();

async function linksPage(
  c: Context<SignedInEnv>,
  extra: { error?: string; listError?: string } = {},
  status: 200 | 400 = 200,
) {
  const { user, services } = c.var;
  const everyone = user.role === 'admin' && c.req.query('all') === '1';
  const rows = await services.guestLinks.listingsOf(await services.guestLinks.list(user, { everyone }));
  return page(
    c,
    <GuestLinksPage
      user={user}
      rows={rows}
      everyone={everyone}
      newUrl={status === 200 ? await takeNewLink(c, 'guest') : undefined}
      notice={noticeOf(c, {
        revoked: 'Link turned off: its address takes nothing now.',
        turnedOn: 'Link turned on again: the same address takes uploads.',
        alreadyOn: 'That link was in use already.',
      })}
      maxUploadBytes={c.var.config.maxUploadBytes}
      canEmail={c.var.config.notify.smtpUrl !== undefined}
      albums={await services.albums.listForOwner(user.id)}
      {...extra}
    />,
    status,
  );
}

guestLinkRoutes.get('/', (c) => linksPage(c));

guestLinkRoutes.post(
  '/',
  form(
    z.object({
      label: text,
      message: text,
      expiry: text,
      max_files: text,
      max_mib: text,
      max_file_mib: text,
      password: text,
      album: text,
      ask_name: flag,
      notify: flag,
    }),
  ),
  async (c) => {
    const f = c.req.valid('form');
    try {
      const { token, link } = await c.var.services.guestLinks.create(actorOf(c), {
        label: f.label,
        message: f.message,
        expiry: parseExpiry(f.expiry),
        maxFiles: f.max_files,
        maxMib: f.max_mib,
        maxFileMib: f.max_file_mib,
        password: f.password,
        albumId: f.album,
        askName: f.ask_name,
        notifyOwner: f.notify,
      });
      return redirectShowingLink(c, { id: link.id, token }, listOf(c));
    } catch (err) {
      if (!(err instanceof DomainError) || err instanceof Gone) throw err;
      answerRefusal(c, err);
      return linksPage(c, { error: err.message }, 400);
    }
  },
);

guestLinkRoutes.get('/:id', async (c) => {
  const { guestLinks } = c.var.services;
  const { listing, images } = await guestLinks.imagesOf(c.var.user, c.req.param('id'));
  return page(c, <GuestLinkImagesPage user={c.var.user} row={listing} images={images} />);
});

/** The list a link's button was pressed on: everyone's (`?all=1`, an admin's) or one's own. */
const listOf = (c: Context<SignedInEnv>) =>
  c.req.query('all') === '1' ? '/guest-links?all=1' : '/guest-links';

guestLinkRoutes.post('/:id/revoke', async (c) => {
  await c.var.services.guestLinks.revoke(actorOf(c), c.req.param('id'));
  return c.redirect(withNotice(listOf(c), 'revoked'), 303);
});

guestLinkRoutes.post('/:id/turn-on', async (c) => {
  let turnedOn: boolean;
  try {
    turnedOn = await c.var.services.guestLinks.turnOn(actorOf(c), c.req.param('id'));
  } catch (err) {
    if (!(err instanceof Invalid || err instanceof TooLarge)) throw err;
    answerRefusal(c, err);
    return linksPage(c, { listError: err.message }, 400);
  }
  return c.redirect(withNotice(listOf(c), turnedOn ? 'turnedOn' : 'alreadyOn'), 303);
});

// Nothing leaks through the referrer, search engines stay out.
guestUploadRoutes.use(async (c, next) => {
  await next();
  c.header('Referrer-Policy', 'no-referrer');
  c.header('X-Robots-Tag', 'noindex, nofollow');
  c.header('Cache-Control', 'no-store');
});

const VISIT_COOKIE = 's3g_guest_visit';
const VISIT_MAX_AGE_SECONDS = 24 * 60 * 60;

const visitCookieName = (c: Context<AppEnv>) =>
  c.var.config.isSecureOrigin ? `__Secure-${VISIT_COOKIE}` : VISIT_COOKIE;

/**
 * The guest's visit: a random cookie for this link's pages alone. It tells this browser's uploads
 * (the ones it may complete, and sees afterwards) from anyone else's; '' when there is none.
 */
function visitOf(c: Context<AppEnv>): string {
  const held = getCookie(c, visitCookieName(c));
  return held && /^[a-z2-7]{32}$/.test(held) ? held : '';
}

/** Starts a visit: its cookie, for this link's pages only (a day). */
function setVisit(c: Context<AppEnv>, token: string): void {
  setCookie(c, visitCookieName(c), randomToken(20), {
    httpOnly: true,
    sameSite: 'Lax', // the bucket's redirect back to us is a top-level navigation from its origin
    secure: c.var.config.isSecureOrigin,
    path: `/u/${token}`,
    maxAge: VISIT_MAX_AGE_SECONDS,
  });
}

const PASS_COOKIE = 's3g_guest_pass';
const NAME_COOKIE = 's3g_guest_name';

/** One of the cookies of a link's pages: the pass for its password, the guest's name. */
function readCookie(c: Context<AppEnv>, name: string): string | undefined {
  return getCookie(c, c.var.config.isSecureOrigin ? `__Secure-${name}` : name);
}

function writeCookie(c: Context<AppEnv>, name: string, token: string, value: string): void {
  setCookie(c, c.var.config.isSecureOrigin ? `__Secure-${name}` : name, value, {
    httpOnly: true,
    sameSite: 'Lax',
    secure: c.var.config.isSecureOrigin,
    path: `/u/${token}`,
    maxAge: VISIT_MAX_AGE_SECONDS,
  });
}

/** Everything of the visit a request carries: its cookie, the password's pass, the guest's name. */
function visitFrom(c: Context<AppEnv>, token: string) {
  return {
    token,
    cookie: visitOf(c),
    ip: clientIp(c),
    pass: readCookie(c, PASS_COOKIE),
    name: readCookie(c, NAME_COOKIE),
  };
}

const NO_COOKIE =
  'This page needs a cookie to tell your uploads from other people’s, and your browser did not keep it. Allow cookies for this site, then open the link again.';

/** A link that takes nothing: its own page, with the reason and its status (404 or 410). */
function gonePage(c: Context<AppEnv>, err: NotFound | Gone) {
  const title = err instanceof NotFound ? 'Link not found' : 'This link no longer takes uploads';
  return page(c, <ShareGonePage title={title} message={err.message} />, answerRefusal(c, err));
}

/** The guest page: the link's words, what it still takes, a fresh form, and this visit's files. */
async function guestPage(
  c: Context<AppEnv>,
  o: {
    refusal?: string;
    gateError?: string;
    /** the name the guest typed beside a password that was refused: the form keeps it */
    typedName?: string;
    status?: 200 | 400 | 401 | 404 | 409 | 413 | 429;
  } = {},
) {
  const token = c.req.param('token') ?? '';
  const { guestLinks } = c.var.services;
  try {
    const link = await guestLinks.open(token);
    const visit = visitFrom(c, token);
    // A first visit gets its cookie, and comes back with it before anything is signed for it: a
    // browser (or a script) that keeps no cookie never holds room in the link.
    if (!visit.cookie && c.req.query('v') !== '1') {
      await guestLinks.startVisit(token, visit.ip);
      await auditGuestOpen(c, link.id);
      setVisit(c, token);
      return c.redirect(`/u/${encodeURIComponent(token)}?v=1`, 303);
    }
    // A link with a password, or one that asks for names: that first.
    const gate = {
      password: !(await guestLinks.isOpenTo(visit)),
      name: link.askName && !visit.name,
      ...(o.gateError ? { error: o.gateError } : {}),
      ...(o.typedName ? { typedName: o.typedName } : {}),
    };
    if (gate.password || gate.name) {
      return page(
        c,
        <GuestUploadPage
          link={link}
          path={`/u/${token}`}
          images={[]}
          accept={c.var.config.accept}
          gate={gate}
        />,
        o.status ?? (gate.password ? 401 : 200),
      );
    }
    const presigned = await (visit.cookie
      ? guestLinks.presign(visit, {
          from: 'form',
          redirectTo: `${c.var.config.appOrigin}/u/${token}/complete`,
        })
      : Promise.reject(new Invalid(NO_COOKIE))
    ).then(
      (form) => ({ form }),
      (err: unknown) => {
        if (!(err instanceof DomainError) || err instanceof NotFound || err instanceof Gone) throw err;
        return { refusal: err.message, status: answerRefusal(c, err) };
      },
    );
    const images = await guestLinks.visitImages(visit);
    return page(
      c,
      <GuestUploadPage
        link={link}
        path={`/u/${token}`}
        images={images}
        accept={c.var.config.accept}
        notice={noticeOf(c, { sent: 'Thank you: your file was received.' })}
        {...('form' in presigned ? { form: presigned.form } : {})}
        refusal={o.refusal ?? ('refusal' in presigned ? presigned.refusal : undefined)}
      />,
      o.status ?? ('status' in presigned ? presigned.status : 200),
    );
  } catch (err) {
    if (err instanceof NotFound || err instanceof Gone) return gonePage(c, err);
    if (err instanceof Throttled) {
      const status = answerRefusal(c, err);
      await auditThrottled(c, 'guest link');
      return page(c, <ShareGonePage title="Too many visits" message={err.message} />, status);
    }
    throw err;
  }
}

guestUploadRoutes.get('/:token', (c) => guestPage(c));

// The gate of a link with a password, or one that asks for names: a pass and a name, kept in
// cookies for this link's pages alone.
guestUploadRoutes.post('/:token', form(z.object({ password: text, name: text })), async (c) => {
  const token = c.req.param('token');
  const { password, name } = c.req.valid('form');
  const visit = visitFrom(c, token);
  try {
    if (!(await c.var.services.guestLinks.isOpenTo(visit)))
      writeCookie(c, PASS_COOKIE, token, await c.var.services.guestLinks.unlock(visit, password));
    const given = cleanText(name, GUEST_NAME_MAX);
    if (given) writeCookie(c, NAME_COOKIE, token, given);
    return c.redirect(`/u/${encodeURIComponent(token)}`, 303);
  } catch (err) {
    if (err instanceof Unauthenticated || err instanceof Throttled || err instanceof Invalid) {
      const status = answerRefusal(c, err) as 400 | 401 | 429;
      if (err instanceof Throttled) await auditThrottled(c, 'guest link');
      return guestPage(c, { gateError: err.message, typedName: cleanText(name, GUEST_NAME_MAX), status });
    }
    if (err instanceof NotFound || err instanceof Gone) return gonePage(c, err);
    throw err;
  }
});

/** The visit as a script's request names it: its cookie must be there already (the page set it). */
const scriptVisit = (c: Context<AppEnv>) => {
  const token = c.req.param('token') ?? '';
  return visitFrom(c, token);
};

guestUploadRoutes.post('/:token/presign', json(presignBody), async (c) => {
  const body = c.req.valid('json');
  const policy = await c.var.services.guestLinks.presign(scriptVisit(c), {
    from: 'script',
    name: body.name,
    ...(body.size !== undefined ? { size: body.size } : {}),
    ...(body.formKey !== undefined ? { formKey: body.formKey } : {}),
  });
  return c.json(policy);
});

guestUploadRoutes.post('/:token/complete', json(completeBody), async (c) => {
  const { key, etag } = c.req.valid('json');
  const visit = scriptVisit(c);
  const done = await c.var.services.guestLinks.complete(visit, key, etag);
  // The guest sees what they sent on the link's page, not the owner's image page.
  return c.json({ imageId: done.imageId, replaced: false, url: `/u/${encodeURIComponent(visit.token)}` });
});

guestUploadRoutes.post('/:token/abandon', json(completeBody), async (c) => {
  await c.var.services.guestLinks.abandon(scriptVisit(c), c.req.valid('json').key);
  return c.body(null, 204);
});

// The bucket's success_action_redirect lands here, adding the stored file's key and ETag: it
// completes only an upload of this browser's visit through this link, and only once.
guestUploadRoutes.get(
  '/:token/complete',
  query(z.object({ key: text, etag: text.transform((value) => value.slice(0, 100)) })),
  async (c) => {
    const token = c.req.param('token');
    const { key, etag } = c.req.valid('query');
    try {
      const visit = visitFrom(c, token);
      await c.var.services.guestLinks.complete(visit, key, etag || undefined);
      return c.redirect(withNotice(`/u/${encodeURIComponent(token)}`, 'sent'), 303);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      if (err instanceof Gone) return gonePage(c, err);
      const status = answerRefusal(c, err);
      return guestPage(c, { refusal: err.message, status: status as 400 | 404 | 409 | 413 | 429 });
    }
  },
);
