import { countOf, formatBytes } from '../../format.js';

export interface Usage {
  images: number;
  bytes: number;
  /** of those images, how many are in the trash (they count until they are deleted for good) */
  trashed?: number;
}

export interface Quota {
  /** null: no limit */
  bytes: number | null;
  images: number | null;
}

/** "1.2 MiB of 5 MiB · 3 of 10 images", or what is used and "no limit". */
function usageText(usage: Usage, quota: Quota): string {
  const bytes =
    quota.bytes === null
      ? formatBytes(usage.bytes)
      : `${formatBytes(usage.bytes)} of ${formatBytes(quota.bytes)}`;
  const images =
    quota.images === null
      ? countOf(usage.images, 'image')
      : `${usage.images} of ${countOf(quota.images, 'image')}`;
  const trash = usage.trashed ? `, ${usage.trashed} of them in the trash` : '';
  return `${bytes} · ${images}${trash}${quota.bytes === null && quota.images === null ? ' (no limit)' : ''}`;
}

/**
 * What an account stores against its quota, in words and, for each limit it has, as a bar
 * (`<meter>`: screen readers read its value; it turns amber near the limit, red at it).
 */
export function UsageMeter({ usage, quota, label }: { usage: Usage; quota: Quota; label: string }) {
  const bars = [
    quota.bytes === null ? null : { name: 'Storage', value: usage.bytes, max: quota.bytes },
    quota.images === null ? null : { name: 'Images', value: usage.images, max: quota.images },
  ].filter((bar) => bar !== null);
  return (
    <div class="usage">
      <p>
        <strong>{label}:</strong> {usageText(usage, quota)}
      </p>
      {bars.map((bar) => {
        // A limit of 0 is full from the start.
        const max = Math.max(1, bar.max);
        const value = bar.max === 0 ? max : Math.min(bar.value, bar.max);
        return (
          <meter
            class="usage-bar"
            min={0}
            max={max}
            value={value}
            low={max * 0.8}
            high={max * 0.95}
            optimum={0}
            aria-label={`${bar.name} used`}
            title={`${bar.name}: ${Math.round((value / max) * 100)}% used`}
          />
        );
      })}
    </div>
  );
}
