const dateTime = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

/** "1 image", "3 images": nouns whose plural just adds an s. */
export const countOf = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export const formatDateTime = (ms: number) => `${dateTime.format(new Date(ms))} UTC`;

/**
 * A camera's time ("1 Jun 2024, 10:30"): EXIF gives the wall clock the camera showed, with no zone,
 * and it is stored as if it were UTC, so it is shown as it was read and without "UTC".
 */
export const formatCameraTime = (ms: number) => dateTime.format(new Date(ms));

const month = new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
const day = new Intl.DateTimeFormat('en-GB', {
  weekday: 'long',
  day: 'numeric',
  month: 'long',
  timeZone: 'UTC',
});

/** An exposure time as cameras print it: "1/250 s" below a second, "2.5 s" from one. */
export function formatExposure(seconds: number): string {
  if (seconds >= 1) return `${Number(seconds.toFixed(1))} s`;
  return `1/${Math.round(1 / seconds)} s`;
}

/** A timeline's month heading ("June 2024") and day heading ("Saturday 1 June"), read as camera time. */
export const formatMonth = (ms: number) => month.format(new Date(ms));
export const formatDay = (ms: number) => day.format(new Date(ms));

// Shared with the browser's upload script, which loads the same file.
export { formatBytes } from '../public/js/format.js';
