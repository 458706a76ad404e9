import { formatBytes } from '../../format.js';

/**
 * A file that is not one of our image types (kept with ACCEPT=any) where a picture would be: its
 * type in large letters and its size. It is never shown inline: its page offers a download.
 */
export function FileCard({
  title,
  file,
  size,
}: {
  title: string;
  file: { label: string; bytes: number };
  size: 'thumb' | 'display';
}) {
  return (
    <span
      class={`file-card file-card-${size}`}
      role="img"
      aria-label={`${title}: ${file.label} file, ${formatBytes(file.bytes)}`}
    >
      <span class="file-type" aria-hidden="true">
        {file.label}
      </span>
      <span class="file-size" aria-hidden="true">
        {formatBytes(file.bytes)}
      </span>
    </span>
  );
}
