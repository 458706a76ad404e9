import type { AppContext } from '../env.js';
import { safeNext } from './render.js';

/**
 * Flash notices: a redirect after a change names what happened in its target's query
 * (`/images/<id>?replaced=1`, `/?deleted=3`), and the page there shows the matching sentence. Each
 * page lists the notices it shows, by name; the first one present (and meaningful) wins.
 */
type Notices = Record<string, string | ((value: string) => string | undefined)>;

/** The address to redirect to after a change, naming the notice its page shows. */
export function withNotice(path: string, name: string, value: string | number = 1): string {
  return `${path}${path.includes('?') ? '&' : '?'}${name}=${encodeURIComponent(value)}`;
}

/** The notice this request's query names, out of those its page shows. */
export function noticeOf(c: AppContext, notices: Notices): string | undefined {
  for (const [name, message] of Object.entries(notices)) {
    const value = c.req.query(name);
    if (!value) continue;
    const sentence = typeof message === 'string' ? message : message(value);
    if (sentence) return sentence;
  }
  return undefined;
}

/** The notice a gallery shows when one of its selection buttons was pressed with no image ticked. */
export const NOTHING_SELECTED = 'Nothing was selected: tick the images first, then press the button again.';

/** Back to the gallery the selection form came from (`back`), saying nothing was selected. */
export function nothingSelected(back: string, appOrigin: string): string {
  return withNotice(safeNext(back, appOrigin), 'unselected');
}
