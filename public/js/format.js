// Sizes as people read them, the same on the server's pages and in the upload script: the app
// imports this file too (src/format.ts), so there is one definition to change.

/** 1536 -> "1.5 KiB": binary units, one decimal below 10. */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
