/**
 * "Load more": a plain link to the next page without scripts; with htmx, pressing it or scrolling
 * it into view appends the next page's items to `target`. A further page sends it again out of
 * band (`isOob`), pointing one page on (or at nothing, at the end).
 */
export function LoadMoreLink({
  href,
  target,
  isOob,
}: {
  href: string | null;
  target: string;
  isOob?: boolean | undefined;
}) {
  return (
    <div id="load-more" class="load-more" hx-swap-oob={isOob ? 'true' : undefined}>
      {href ? (
        <a
          class="button"
          href={href}
          hx-get={href}
          hx-trigger="click, revealed"
          hx-target={target}
          hx-swap="beforeend"
        >
          Load more
        </a>
      ) : null}
    </div>
  );
}
