// A gallery grid (#grid) with a keyboard and a selection, on top of markup that works without it.
// Keyboard: the grid is one tab stop (roving tabindex on the cards' links); the arrow keys move
// between cards by the columns as drawn, Home and End go to the ends, Enter opens (the link's own),
// Space ticks the card and Shift+Space ticks the range from the last one ticked.
// Selection: "N selected", "Select all" on the page, shift-click ranges, and the bulk buttons
// disabled while nothing is ticked (without this script they stay enabled: the server says so).
// Cards added later (next pages, a thumbnail swapped in) are taken in as they arrive.

const grid = document.getElementById('grid');
const form = document.querySelector('form[data-selection]');

const cards = () => [...grid.querySelectorAll(':scope > li.thumb')];
const linkOf = (card) => card.querySelector('.thumb-link');
const boxOf = (card) => card.querySelector('input[type="checkbox"][name="ids"]');

let active = null; // the card whose link is the grid's tab stop
let anchor = null; // the card ticked or unticked last, where a shift range starts

/** One tab stop: the active card's link; the rest of every card is reached by keys or pointer. */
function roveTabStops() {
  const all = cards();
  if (!active?.isConnected) active = all[0] ?? null;
  for (const card of all) {
    const link = linkOf(card);
    if (link) {
      link.tabIndex = card === active ? 0 : -1;
      link.setAttribute('aria-describedby', 'grid-keys');
    }
    for (const other of card.querySelectorAll('input, a:not(.thumb-link), button')) other.tabIndex = -1;
  }
}

function focusCard(card) {
  if (!card) return;
  active = card;
  roveTabStops();
  linkOf(card)?.focus();
}

/** How many cards the first row holds, read from where the browser drew them. */
function columnCount(all) {
  const top = all[0]?.getBoundingClientRect().top;
  let n = 0;
  for (const card of all) {
    if (Math.abs(card.getBoundingClientRect().top - top) > 1) break;
    n += 1;
  }
  return Math.max(1, n);
}

function target(all, index, key) {
  const columns = columnCount(all);
  const last = all.length - 1;
  switch (key) {
    case 'ArrowLeft':
      return Math.max(0, index - 1);
    case 'ArrowRight':
      return Math.min(last, index + 1);
    case 'ArrowUp':
      return index - columns >= 0 ? index - columns : index;
    case 'ArrowDown':
      // Below a card with nothing under it, the last card of the short final row.
      if (index + columns <= last) return index + columns;
      return Math.floor(index / columns) < Math.floor(last / columns) ? last : index;
    case 'Home':
      return 0;
    case 'End':
      return last;
    default:
      return null;
  }
}

function tick(card, isRange) {
  const box = boxOf(card);
  if (!box) return;
  const checked = !box.checked;
  if (isRange && anchor?.isConnected) setRange(anchor, card, checked);
  else box.checked = checked;
  anchor = card;
  updateSelection();
}

function setRange(from, to, checked) {
  const all = cards();
  const [a, b] = [all.indexOf(from), all.indexOf(to)].sort((x, y) => x - y);
  for (const card of all.slice(a, b + 1)) {
    const box = boxOf(card);
    if (box) box.checked = checked;
  }
}

const boxes = () => [...document.querySelectorAll('input[type="checkbox"][name="ids"][form="bulk-delete"]')];

function updateSelection() {
  if (!form) return;
  const all = boxes();
  const n = all.filter((box) => box.checked).length;
  const count = form.querySelector('[data-selection-count]');
  if (count) {
    count.textContent = `${n} selected`;
    count.hidden = false;
  }
  for (const button of form.querySelectorAll('button[type="submit"]')) button.disabled = n === 0;
  const selectAll = form.querySelector('[data-select-all]');
  if (selectAll) {
    selectAll.hidden = all.length === 0;
    selectAll.textContent = all.length > 0 && n === all.length ? 'Select none' : 'Select all';
  }
}

if (grid) {
  const hint = document.createElement('p');
  hint.id = 'grid-keys';
  hint.className = 'visually-hidden';
  hint.textContent = 'Arrow keys move between images, Enter opens one, Space selects it.';
  grid.before(hint);

  grid.addEventListener('keydown', (event) => {
    const card = event.target.closest?.('li.thumb');
    if (!card || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === ' ' && event.target === linkOf(card)) {
      event.preventDefault(); // not a page scroll
      tick(card, event.shiftKey);
      return;
    }
    const all = cards();
    const next = target(all, all.indexOf(card), event.key);
    if (next === null) return;
    event.preventDefault();
    focusCard(all[next]);
  });

  // A card focused by pointer or script becomes the tab stop, so Tab comes back to it.
  grid.addEventListener('focusin', (event) => {
    const card = event.target.closest?.('li.thumb');
    if (card && card !== active) {
      active = card;
      roveTabStops();
    }
  });

  grid.addEventListener('click', (event) => {
    const box = event.target.closest?.('input[name="ids"]');
    if (!box) return;
    const card = box.closest('li.thumb');
    if (event.shiftKey && anchor?.isConnected && anchor !== card) setRange(anchor, card, box.checked);
    anchor = card;
    updateSelection();
  });
  grid.addEventListener('change', updateSelection);

  new MutationObserver(() => {
    roveTabStops();
    updateSelection();
  }).observe(grid, { childList: true, subtree: true });

  roveTabStops();
}

if (form) {
  form.querySelector('[data-select-all]')?.addEventListener('click', () => {
    const all = boxes();
    const isAll = all.every((box) => box.checked);
    for (const box of all) box.checked = !isAll;
    anchor = null;
    updateSelection();
  });
  updateSelection();
  // Back to this page: the browser may have put the ticks back as they were.
  window.addEventListener('pageshow', updateSelection);
}
