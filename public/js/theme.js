// The colour theme: the system's (prefers-color-scheme, the default and all there is without
// JavaScript), or light or dark as chosen with the header's toggle and remembered in localStorage.
// A classic script loaded in <head> without defer, so <html data-theme> is set before the first
// paint and a dark page never flashes light. The stylesheet reads data-theme; "system" sets none.
(() => {
  const KEY = 's3g-theme';
  const CHOICES = ['system', 'light', 'dark'];
  const root = document.documentElement;

  const stored = () => {
    try {
      const value = localStorage.getItem(KEY);
      return CHOICES.includes(value) ? value : 'system';
    } catch {
      return 'system'; // storage refused (private mode, blocked cookies): follow the system
    }
  };

  const apply = (choice) => {
    if (choice === 'system') delete root.dataset.theme;
    else root.dataset.theme = choice;
  };

  let current = stored();
  apply(current);

  document.addEventListener('DOMContentLoaded', () => {
    const toggle = document.querySelector('[data-theme-toggle]');
    if (toggle) {
      const show = (choice) => {
        toggle.textContent = `Theme: ${choice}`;
      };
      show(current);
      toggle.hidden = false;
      toggle.addEventListener('click', () => {
        const next = CHOICES[(CHOICES.indexOf(current) + 1) % CHOICES.length];
        current = next;
        try {
          if (next === 'system') localStorage.removeItem(KEY);
          else localStorage.setItem(KEY, next);
        } catch {
          // not remembered, but still applied to this page
        }
        apply(next);
        show(next);
      });
    }
    // Wide screens show the menu as a bar through ::details-content; a browser without it gets
    // the menu opened here instead (with scripts off there, it stays a "Menu" button).
    const menu = document.querySelector('details.menu');
    if (menu && !CSS.supports('selector(::details-content)') && matchMedia('(min-width: 48rem)').matches)
      menu.open = true;
  });
})();
