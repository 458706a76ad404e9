import type { Child } from 'hono/jsx';

/**
 * A table too wide for a phone scrolls sideways inside this box instead of widening the page. The
 * box is a named region and a tab stop, so a keyboard can scroll it too.
 */
export function TableScroll({ label, children }: { label: string; children?: Child }) {
  return (
    <section class="table-scroll" aria-label={label} tabindex={0}>
      {children}
    </section>
  );
}
