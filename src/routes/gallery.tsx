import { Hono } from 'hono';
import type { AppEnv } from '../env.js';
import { requireUser, signedIn } from '../middleware/session.js';
import { GalleryPage } from '../views/gallery.js';
import { page } from './render.js';

export const galleryRoutes = new Hono<AppEnv>();

galleryRoutes.get('/', requireUser, (c) => page(c, <GalleryPage user={signedIn(c).user} />));
