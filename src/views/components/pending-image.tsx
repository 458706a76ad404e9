import type { ImageState } from '../../db/schema.js';

/** What a view needs to show an image whose copies are not made yet (or could not be). */
export interface PendingImageData {
  title: string;
  state: ImageState;
  failure: string | null;
  placeholder: string | null;
}

const PROCESSING = 'Processing…';
const FAILED = 'Could not be processed';

/**
 * The box shown instead of a thumbnail or display copy while an image is processed in the
 * background, or after that failed: its words say which, and its placeholder (a ThumbHash, painted
 * by public/js/placeholders.js) shows the colours once they are known.
 */
export function PendingImage({ image, size }: { image: PendingImageData; size: 'thumb' | 'display' }) {
  const isProcessing = image.state === 'processing';
  return (
    <span
      class={`pending pending-${size} ${isProcessing ? 'is-processing' : 'is-failed'}`}
      role="img"
      aria-label={`${image.title}: ${isProcessing ? 'being processed' : 'could not be processed'}`}
      data-thumbhash={image.placeholder ?? undefined}
    >
      <span aria-hidden="true">{isProcessing ? PROCESSING : FAILED}</span>
    </span>
  );
}
