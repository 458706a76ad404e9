// The image viewer: a click on a ready picture in a grid (or on a share link's page) opens it full
// screen in PhotoSwipe, with previous/next across the pictures on the page, keys, swipe and pinch.
// Without this script each picture is a plain link to its page, which has its own previous/next.
//
// Each open picture has a URL: opening pushes the card's own address (/images/<id>), or #image=<id>
// where the card links elsewhere (a share link's page), so Back closes the viewer and a reload shows
// that image. Cards htmx adds later ("Load more") join, because the list is read at each opening.
import PhotoSwipeLightbox from '/vendor/photoswipe-lightbox.esm.min.js';

/** What holds a set of pictures the viewer steps through: a grid, or a share link's page. */
const GALLERY = '#grid, .shared';
/** Only ready pictures carry the display copy's address; the others open their page instead. */
const PICTURE = 'a[data-pswp-src]';
const HASH = /^#image=([A-Za-z0-9_-]+)$/;

/** The card the viewer was opened from, to return to if the last one shown has gone. */
let opener = null;

const lightbox = new PhotoSwipeLightbox({
  children: PICTURE,
  pswpModule: () => import('/vendor/photoswipe.esm.min.js'),
  // A dark room, as in a photo app: the grid behind does not show through.
  bgOpacity: 1,
  // Focus goes back to the card of the picture shown last (see 'destroy'), not always the first.
  returnFocus: false,
  closeTitle: 'Close (Esc)',
  zoomTitle: 'Zoom',
  arrowPrevTitle: 'Previous (←)',
  arrowNextTitle: 'Next (→)',
  errorMsg: 'This picture could not be loaded.',
});

/** The picture's own page, if it has one: a link straight to the picture (a share link's) has not. */
function pageOf(link) {
  const url = new URL(link.href, location.href);
  // With its query: the page's previous/next follow the grid it was opened from (?order=, ?album=).
  return url.origin === location.origin && link.href !== link.dataset.pswpSrc
    ? url.pathname + url.search
    : null;
}

/** The address the open picture shows in the location bar. */
const addressOf = (link) => pageOf(link) ?? `#image=${link.dataset.imageId}`;

// The picture's title under it, linking to its page where it has one (details, download).
lightbox.on('uiRegister', () => {
  lightbox.pswp.ui.registerElement({
    name: 'caption',
    order: 9,
    isButton: false,
    appendTo: 'root',
    onInit: (el, pswp) => {
      pswp.on('change', () => {
        const { element: link, alt: title = '' } = pswp.currSlide?.data ?? {};
        el.replaceChildren();
        if (!link) return;
        const page = pageOf(link);
        if (page) {
          const a = document.createElement('a');
          a.href = page;
          a.className = 'caption-link';
          a.textContent = title;
          // The page takes the viewer's place in history, so Back from it returns to the grid: off
          // the viewer's entry first, then on. (Chromium keeps the document when location.replace()
          // is given the entry's own address, so the grid's entry would then show the page.)
          a.addEventListener('click', (e) => {
            if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
            if (!history.state?.viewer) return;
            e.preventDefault();
            window.addEventListener('popstate', () => location.assign(a.href), { once: true });
            history.back();
          });
          el.append(a);
        } else el.textContent = title;
      });
    },
  });
});

/** The grid's address once the viewer closes, if "Load more" brought in a page while it was open. */
let gridAddress = null;
/** Whether the entry on top is the open viewer's (pushed by it, not yet left by Back or closing). */
let viewerEntry = false;

/** The open picture's entry: the viewer's state and the picture's address. */
function showInHistory(link, replace) {
  const state = { viewer: link.dataset.imageId };
  if (replace) history.replaceState(state, '', addressOf(link));
  else history.pushState(state, '', addressOf(link));
  viewerEntry = true;
}

// One history entry for the whole visit: pushed on opening, replaced on each step, gone on closing.
lightbox.on('change', () => {
  const link = lightbox.pswp?.currSlide?.data.element;
  if (!link) return;
  if (!history.state?.viewer) {
    // The grid's own entry loses htmx's mark: htmx would reload the page when Back (or closing)
    // returns to an entry it marked, as it keeps no copy of pages (see src/views/layout.tsx).
    history.replaceState(null, '', location.href);
  }
  showInHistory(link, Boolean(history.state?.viewer));
});
// A page "Load more" brought in behind the viewer (scrolled into view as it opened) puts how far the
// grid got into the address: that is the grid's entry's, not the open picture's.
document.addEventListener('htmx:replacedInHistory', (e) => {
  const link = window.pswp?.currSlide?.data.element;
  if (!link || !viewerEntry || history.state?.viewer) return;
  gridAddress = e.detail.path;
  showInHistory(link, true);
});
lightbox.on('close', () => {
  // Closed by Esc, the button or a gesture: take the viewer's entry off, as Back would have.
  if (history.state?.viewer) history.back();
});
lightbox.on('destroy', () => {
  const link = lightbox.pswp?.currSlide?.data.element;
  const target = link?.isConnected ? link : opener?.isConnected ? opener : null;
  if (target) {
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: 'nearest' });
  }
  opener = null;
});
lightbox.init();

function open(link, point) {
  const gallery = link.closest(GALLERY);
  if (!gallery) return false;
  const index = [...gallery.querySelectorAll(PICTURE)].indexOf(link);
  if (index < 0) return false;
  opener = link;
  return lightbox.loadAndOpen(index, { gallery }, point);
}

document.addEventListener('click', (e) => {
  // A new tab, a download or a second click while open: the browser's own behaviour.
  if (e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
  if (window.pswp) return;
  const link = e.target instanceof Element ? e.target.closest(PICTURE) : null;
  if (!link) return;
  // A keyboard's Enter clicks at (0, 0): PhotoSwipe then focuses the viewer at once.
  const point = e.detail === 0 ? null : { x: e.clientX, y: e.clientY };
  if (open(link, point)) e.preventDefault();
});

// PhotoSwipe brings focus back when it leaves for the page, but Tab from its last button leaves the
// document altogether: cycle through the viewer's own controls instead, as a modal dialog does.
document.addEventListener('keydown', (e) => {
  const root = window.pswp?.element;
  if (e.key !== 'Tab' || !root) return;
  const controls = [...root.querySelectorAll('button, a[href]')].filter(
    (el) => !el.disabled && el.checkVisibility(),
  );
  const first = controls[0];
  const last = controls.at(-1);
  if (!first || !last) return;
  const inside = root.contains(document.activeElement) && document.activeElement !== root;
  if (e.shiftKey && (!inside || document.activeElement === first)) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && (!inside || document.activeElement === last)) {
    e.preventDefault();
    first.focus();
  }
});

window.addEventListener('popstate', (e) => {
  if (!e.state?.viewer) viewerEntry = false;
  if (!e.state?.viewer && gridAddress) {
    history.replaceState(e.state, '', gridAddress);
    gridAddress = null;
  }
  if (window.pswp && !e.state?.viewer) {
    const pswp = window.pswp;
    // PhotoSwipe ignores closing while it opens: Back pressed that soon closes it once it has.
    if (pswp.opener.isOpen) pswp.close();
    else pswp.on('openingAnimationEnd', () => pswp.close());
    return;
  }
  // Forward onto a picture's entry: show it again if its card is here (the entry is reused, as
  // history.state says), else load that address.
  if (!window.pswp && e.state?.viewer) {
    const link = document.querySelector(`${PICTURE}[data-image-id="${CSS.escape(e.state.viewer)}"]`);
    if (!link || !open(link, null)) location.reload();
  }
});

/** An address ending in #image=<id> (a share link's page, or any grid) shows that picture. */
function openFromHash() {
  const id = HASH.exec(location.hash)?.[1];
  const link = id ? document.querySelector(`${PICTURE}[data-image-id="${CSS.escape(id)}"]`) : null;
  if (!link || window.pswp) return;
  // The page's own entry loses the hash, and opening pushes it back: Back then closes the viewer.
  history.replaceState(null, '', location.pathname + location.search);
  open(link, null);
}
openFromHash();
// Typed or pasted into the address bar of the page already open (our own entries carry a state).
window.addEventListener('hashchange', () => {
  if (!history.state?.viewer) openFromHash();
});
