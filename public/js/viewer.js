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
  // Focus goes back to the card of the picture shown last (see 'destroy'), not always the first.
  returnFocus: false,
  closeTitle: 'Close (Esc)',
  zoomTitle: 'Zoom',
  arrowPrevTitle: 'Previous (←)',
  arrowNextTitle: 'Next (→)',
  errorMsg: 'This picture could not be loaded.',
});

/** The address the open picture shows in the location bar. */
function addressOf(link) {
  const url = new URL(link.href, location.href);
  return url.origin === location.origin ? url.pathname : `#image=${link.dataset.imageId}`;
}

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
        const url = new URL(link.href, location.href);
        if (url.origin === location.origin) {
          const a = document.createElement('a');
          a.href = url.pathname;
          a.className = 'caption-link';
          a.textContent = title;
          el.append(a);
        } else el.textContent = title;
      });
    },
  });
});

// One history entry for the whole visit: pushed on opening, replaced on each step, gone on closing.
lightbox.on('change', () => {
  const link = lightbox.pswp?.currSlide?.data.element;
  if (!link) return;
  const state = { viewer: link.dataset.imageId };
  if (history.state?.viewer) history.replaceState(state, '', addressOf(link));
  else history.pushState(state, '', addressOf(link));
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

window.addEventListener('popstate', (e) => {
  if (window.pswp && !e.state?.viewer) {
    window.pswp.close();
    return;
  }
  // Forward onto a picture's entry: show it again if its card is here (the entry is reused, as
  // history.state says), else load that address.
  if (!window.pswp && e.state?.viewer) {
    const link = document.querySelector(`${PICTURE}[data-image-id="${CSS.escape(e.state.viewer)}"]`);
    if (!link || !open(link, null)) location.reload();
  }
});

// A share link's page opened at #image=<id> shows that picture.
const id = HASH.exec(location.hash)?.[1];
const linked = id ? document.querySelector(`${PICTURE}[data-image-id="${CSS.escape(id)}"]`) : null;
if (linked) {
  history.replaceState(null, '', location.pathname + location.search);
  open(linked, null);
}
