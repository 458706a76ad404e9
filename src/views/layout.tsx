import type { Child } from 'hono/jsx';
import { can } from '../policy.js';
import type { User } from '../services/users.js';
import { asset } from './assets.js';

export interface LayoutProps {
  title: string;
  user: User | null;
  /** public share pages: no navigation into the app */
  bare?: boolean;
  /** reload the page after this many seconds when scripts are off (htmx updates it when they are on) */
  refreshWithoutScript?: number;
  children?: Child;
}

// htmx would otherwise inject a <style> element, which our CSP (style-src 'self') refuses.
// Back asks the server again (the address records how far the grid was paged) rather than restoring a
// snapshot from localStorage: a snapshot carries the style attributes scripts set, which the CSP
// refuses on the way back in, and a long grid makes a large one.
const htmxConfig = JSON.stringify({
  includeIndicatorStyles: false,
  historyCacheSize: 0,
  refreshOnHistoryMiss: true,
});

export function Layout({ title, user, bare, refreshWithoutScript, children }: LayoutProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={htmxConfig} />
        <title>{`${title} · s3-gallery`}</title>
        {refreshWithoutScript ? (
          <noscript>
            <meta http-equiv="refresh" content={String(refreshWithoutScript)} />
          </noscript>
        ) : null}
        {/* Classic and not deferred: it sets the chosen theme before the first paint, so nothing flashes. */}
        <script src={asset('js/theme.js')} />
        <link rel="icon" href={asset('favicon.svg')} type="image/svg+xml" />
        <link rel="stylesheet" href="/vendor/photoswipe.css" />
        <link rel="stylesheet" href={asset('css/app.css')} />
        <script src="/vendor/htmx.min.js" defer />
        <script type="module" src={asset('js/placeholders.js')} />
        <script type="module" src={asset('js/viewer.js')} />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="site">
          {bare ? (
            <span class="brand">s3-gallery</span>
          ) : (
            <a class="brand" href="/">
              s3-gallery
            </a>
          )}
          <button type="button" class="link theme-toggle" data-theme-toggle hidden>
            Theme: system
          </button>
          {bare ? null : (
            // A menu that needs no script: shown as a bar on wide screens (app.css), folded on phones.
            <details class="menu">
              <summary>Menu</summary>
              <MainNav user={user} />
            </details>
          )}
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}

function MainNav({ user }: { user: User | null }) {
  return user ? (
    <nav aria-label="Main">
      <a href="/">Gallery</a>
      <a href="/shared">Shared</a>
      {can(user, 'album.create') ? <a href="/albums">Albums</a> : null}
      {can(user, 'share.create') ? <a href="/shares">Links</a> : null}
      {can(user, 'admin') ? <a href="/admin">Admin</a> : null}
      <a href="/account">Account</a>
      <span class="who">
        {user.email} <span class={`role role-${user.role}`}>{user.role}</span>
      </span>
      <form method="post" action="/logout" class="inline">
        <button type="submit" class="link">
          Log out
        </button>
      </form>
    </nav>
  ) : (
    <nav aria-label="Main">
      <a href="/login">Log in</a>
      <a href="/signup">Sign up</a>
    </nav>
  );
}
