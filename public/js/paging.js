// Keeps keyboard users in place when "Load more" appends a page (htmx, by a press or by scrolling
// it into view): the link they were on is replaced by the next one, so focus would fall back to the
// top of the page. Focus moves to the first new card instead, when the page was asked for by a press
// or focus was on the link; a page loaded by scrolling past leaves focus where it was.
let cardsBefore = -1;
let shouldFocus = false;

const isLoadMore = (el) => el instanceof Element && el.closest('#load-more') !== null;
const cards = (grid) => grid.querySelectorAll(':scope > li.thumb');

document.addEventListener('htmx:beforeRequest', (event) => {
  if (!isLoadMore(event.detail.elt)) return;
  shouldFocus = event.detail.requestConfig?.triggeringEvent?.type === 'click';
});

document.addEventListener('htmx:beforeSwap', (event) => {
  const grid = event.detail.target;
  if (!(grid instanceof Element) || grid.id !== 'grid') return;
  shouldFocus ||= isLoadMore(document.activeElement);
  cardsBefore = cards(grid).length;
});

document.addEventListener('htmx:afterSettle', (event) => {
  const grid = event.detail.target;
  if (!(grid instanceof Element) || grid.id !== 'grid' || cardsBefore < 0) return;
  const first = cards(grid)[cardsBefore];
  cardsBefore = -1;
  if (!shouldFocus || !first) return;
  shouldFocus = false;
  first.querySelector('a, button, input, [tabindex]')?.focus();
});
