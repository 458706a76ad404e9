// Paints each image's placeholder (data-thumbhash: a ThumbHash, about 25 bytes of base64) as its
// background, so a grid shows its shapes and colours before any thumbnail arrives; a thumbnail's
// placeholder is cleared once it has loaded. Cards htmx adds later are painted when they settle.
// Styles are set through the CSSOM: our CSP (style-src 'self') refuses style attributes, not these.
import { thumbHashToDataURL } from '/vendor/thumbhash.js';

const painted = new WeakSet();

function paint(el) {
  if (painted.has(el)) return;
  painted.add(el);
  let url;
  try {
    url = thumbHashToDataURL(Uint8Array.from(atob(el.dataset.thumbhash), (c) => c.charCodeAt(0)));
  } catch {
    return; // a damaged hash leaves the plain background
  }
  // An image already shown (from the cache, before this module ran) needs no placeholder.
  if (el instanceof HTMLImageElement && el.complete && el.naturalWidth > 0) return;
  el.style.backgroundImage = `url("${url}")`;
  el.style.backgroundSize = 'cover';
  if (el instanceof HTMLImageElement)
    el.addEventListener(
      'load',
      () => {
        el.style.backgroundImage = '';
        el.style.backgroundSize = '';
        // An empty style="" would still be an inline style if the page's HTML were reused.
        if (el.getAttribute('style') === '') el.removeAttribute('style');
      },
      { once: true },
    );
}

const paintAll = () => {
  for (const el of document.querySelectorAll('[data-thumbhash]')) paint(el);
};

paintAll();
document.body.addEventListener('htmx:afterSettle', paintAll);
