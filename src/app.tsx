import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { isContention } from './db/database.js';
import type { AppEnv } from './env.js';
import { answerRefusal } from './http-errors.js';
import { chooseRequestId, requestIdOf } from './logger.js';
import { privateNoStore } from './middleware/private-cache.js';
import { requestLog } from './middleware/request-log.js';
import { sameOriginOnly } from './middleware/same-origin.js';
import { loadSession } from './middleware/session.js';
import { accessKeyRoutes } from './routes/access-keys.js';
import { adminRoutes } from './routes/admin.js';
import { albumRoutes, userAlbumRoutes } from './routes/albums.js';
import { authRoutes } from './routes/auth.js';
import { bucketEventRoutes } from './routes/bucket-events.js';
import { galleryRoutes } from './routes/gallery.js';
import { guestLinkRoutes, guestUploadRoutes } from './routes/guest-links.js';
import { healthRoutes } from './routes/health.js';
import { imageRoutes } from './routes/images.js';
import { fragment, page } from './routes/render.js';
import { publicShareRoutes, shareRoutes } from './routes/shares.js';
import { trashRoutes, userTrashRoutes } from './routes/trash.js';
import { uploadPageRoutes, uploadRoutes } from './routes/uploads.js';
import { DomainError, TooLarge, Unavailable } from './services/errors.js';
import type { Services } from './services/index.js';
import { assetVersion, publicDir } from './views/assets.js';
import { ErrorFragment, ErrorPage } from './views/error.js';

const require = createRequire(import.meta.url);
const htmxSource = readFileSync(require.resolve('htmx.org/dist/htmx.min.js'));
// An ES module: public/js/placeholders.js imports it to paint the images' ThumbHash placeholders.
const thumbhashSource = readFileSync(require.resolve('thumbhash/thumbhash.js'));
// The image viewer (public/js/viewer.js): the lightbox module loads the viewer itself when a picture
// is first opened. Served from our origin as they are, like htmx: no bundler, no CDN.
// The package exports only its unminified modules, so the files are read from its dist folder.
const photoswipeDir = path.dirname(require.resolve('photoswipe/photoswipe.css'));
const photoswipeFiles = (
  [
    ['photoswipe-lightbox.esm.min.js', 'text/javascript; charset=utf-8'],
    ['photoswipe.esm.min.js', 'text/javascript; charset=utf-8'],
    ['photoswipe.css', 'text/css; charset=utf-8'],
  ] as const
).map(([name, type]) => ({ name, type, body: readFileSync(path.join(photoswipeDir, name)) }));
const YEAR_SECONDS = 365 * 24 * 60 * 60;
// Forms post urlencoded text; image bytes go straight to the bucket, never through the app.
const MAX_FORM_BYTES = 256 * 1024;

export interface AppDeps {
  config: Config;
  services: Services;
  log: Logger;
}

export function createApp({ config, services, log }: AppDeps) {
  const app = new Hono<AppEnv>();
  const storageOrigins = config.s3 ? [new URL(config.s3.publicEndpoint).origin] : [];

  // A request that came through the HTTP server keeps the id its deadlines would log it under.
  app.use(async (c, next) => {
    const id = c.env?.incoming
      ? requestIdOf(c.env.incoming, config.trustProxy)
      : chooseRequestId(c.req.header('X-Request-Id'), config.trustProxy);
    c.set('requestId', id);
    c.header('X-Request-Id', id);
    await next();
  });
  app.use(async (c, next) => {
    c.set('config', config);
    c.set('services', services);
    c.set('log', log.child({ reqId: c.var.requestId }));
    c.set('user', null);
    c.set('session', null);
    await next();
  });
  app.use(requestLog);
  app.use(privateNoStore);
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        // blob: the upload page's previews of files chosen on this machine (only our scripts make them).
        imgSrc: ["'self'", 'data:', 'blob:', ...storageOrigins],
        connectSrc: ["'self'", ...storageOrigins],
        formAction: ["'self'", ...storageOrigins],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        objectSrc: ["'none'"],
      },
      referrerPolicy: 'same-origin',
      strictTransportSecurity: config.isSecureOrigin ? 'max-age=31536000; includeSubDomains' : false,
      crossOriginEmbedderPolicy: false,
      // Routes that need stricter headers (public share pages: no referrer at all) set their own.
      overwrite: false,
    }),
  );
  // Servers post events with their own proof (a signature, a token) and no Origin: before CSRF.
  app.route('/events/s3', bucketEventRoutes);
  app.use(csrf({ origin: config.appOrigin, secFetchSite: 'same-origin' }));
  app.use(sameOriginOnly(config.appOrigin));
  const limitBody = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => {
      throw new TooLarge('That request was too large.');
    },
  });
  // Asking a GET for its body makes @hono/node-server build a whole web Request: skip what has none.
  app.use((c, next) => (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limitBody(c, next)));

  app.get('/vendor/htmx.min.js', (c) => {
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', `public, max-age=${YEAR_SECONDS}`);
    return c.body(htmxSource);
  });
  app.get('/vendor/thumbhash.js', (c) => {
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', `public, max-age=${YEAR_SECONDS}`);
    return c.body(thumbhashSource);
  });
  for (const { name, type, body } of photoswipeFiles) {
    app.get(`/vendor/${name}`, (c) => {
      c.header('Content-Type', type);
      c.header('Cache-Control', `public, max-age=${YEAR_SECONDS}`);
      return c.body(body);
    });
  }
  app.use(
    '/public/*',
    async (c, next) => {
      await next();
      // Only a file found: a miss falls through to the app's 404 page, which names who is signed in.
      if (!c.res.ok && c.res.status !== 304) return;
      const isVersioned = c.req.query('v') === assetVersion;
      c.header(
        'Cache-Control',
        isVersioned ? `public, max-age=${YEAR_SECONDS}, immutable` : 'public, max-age=300',
      );
    },
    serveStatic({ root: publicDir, rewriteRequestPath: (p) => p.replace(/^\/public/, '') }),
  );

  app.use(loadSession);
  // Pages at the top level, each guarding its own routes; then one sub-app per area, at its prefix.
  app.route('/', healthRoutes);
  app.route('/', authRoutes);
  app.route('/account/keys', accessKeyRoutes);
  app.route('/', galleryRoutes);
  app.route('/upload', uploadPageRoutes);
  app.route('/uploads', uploadRoutes);
  app.route('/images', imageRoutes);
  app.route('/shares', shareRoutes);
  app.route('/s', publicShareRoutes);
  app.route('/guest-links', guestLinkRoutes);
  app.route('/u', guestUploadRoutes);
  app.route('/albums', albumRoutes);
  app.route('/users', userAlbumRoutes);
  app.route('/trash', trashRoutes);
  app.route('/users', userTrashRoutes);
  app.route('/admin', adminRoutes);

  app.notFound((c) => errorResponse(c, 404, 'There is nothing at this address.'));
  app.onError((err, c) => {
    if (err instanceof Unavailable && err.cause !== undefined)
      c.var.log.error({ err: err.cause, path: c.req.path }, 'storage unavailable');
    if (err instanceof DomainError) return errorResponse(c, answerRefusal(c, err), err.message);
    if (err instanceof HTTPException && err.status < 500) {
      const message =
        err.status === 403
          ? 'This request came from another site, so it was refused.'
          : 'That request was not valid.';
      return errorResponse(c, err.status as ContentfulStatusCode, message);
    }
    if (isContention(err)) {
      c.var.log.warn({ err, method: c.req.method, path: c.req.path }, 'database contention: answered 503');
      c.header('Retry-After', '1');
      return errorResponse(c, 503, 'The server is busy right now. Nothing was changed; please try again.');
    }
    c.var.log.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error');
    return errorResponse(c, 500, 'Something went wrong on our side. Please try again.');
  });

  return app;
}

function errorResponse(c: Context<AppEnv>, status: ContentfulStatusCode, message: string) {
  if (c.req.header('HX-Request')) return fragment(c, <ErrorFragment message={message} />, status);
  if (c.req.header('Accept')?.startsWith('application/json')) return c.json({ error: message }, status);
  return page(c, <ErrorPage status={status} message={message} user={c.var.user ?? null} />, status);
}
