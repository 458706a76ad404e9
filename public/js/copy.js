// A Copy button beside a read-only field (data-copy="<the field's id>"): shown only when this
// script runs; the field stays selectable without it. The clipboard API needs a secure context
// (https or localhost); elsewhere (http on a LAN address) the text is selected for Ctrl+C or ⌘C instead.
for (const button of document.querySelectorAll('button[data-copy]')) {
  const field = document.getElementById(button.dataset.copy);
  if (!field) continue;
  button.hidden = false;
  const label = button.textContent;
  const say = (words) => {
    button.textContent = words;
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  };
  button.addEventListener('click', async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      say('Copied');
    } catch {
      say(/Mac|iPhone|iPad/.test(navigator.platform) ? 'Press ⌘C to copy' : 'Press Ctrl+C to copy');
    }
  });
}
