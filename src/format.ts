const dateTime = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

/** "1 image", "3 images": nouns whose plural just adds an s. */
export const countOf = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export const formatDateTime = (ms: number) => `${dateTime.format(new Date(ms))} UTC`;

// Shared with the browser's upload script, which loads the same file.
export { formatBytes } from '../public/js/format.js';
