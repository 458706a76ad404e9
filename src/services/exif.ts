import { z } from 'zod';

/**
 * The camera's settings an image page shows, as they are stored (images.exif, a small JSON object).
 * What comes out of a file is untrusted: each field is kept only when it is a sane value, and the
 * stored JSON is read back through the same schema, so a row written by an older version (or edited
 * by hand) shows what is valid in it and nothing else.
 */
const text = z
  .string()
  .transform((s) => s.replace(/[\p{Cc}\p{Cf}]/gu, '').trim())
  .pipe(z.string().min(1).max(100));
const positive = z.number().finite().positive().max(1_000_000);

const cameraDetails = z.object({
  make: text.optional().catch(undefined),
  model: text.optional().catch(undefined),
  lens: text.optional().catch(undefined),
  exposureSeconds: positive.optional().catch(undefined),
  fNumber: positive.optional().catch(undefined),
  focalLengthMm: positive.optional().catch(undefined),
  iso: z.number().int().positive().max(10_000_000).optional().catch(undefined),
});

export type CameraDetails = z.output<typeof cameraDetails>;

/** What exif-reader returned (any shape), reduced to the details we keep; null when none. */
export function cameraDetailsOf(tags: unknown): CameraDetails | null {
  const groups = (tags ?? {}) as { Image?: Record<string, unknown>; Photo?: Record<string, unknown> };
  const image = groups.Image ?? {};
  const photo = groups.Photo ?? {};
  const iso = photo.ISOSpeedRatings ?? photo.PhotographicSensitivity ?? photo.ISOSpeed;
  return compact(
    cameraDetails.parse({
      make: image.Make,
      model: image.Model,
      lens: photo.LensModel,
      exposureSeconds: photo.ExposureTime,
      fNumber: photo.FNumber,
      focalLengthMm: photo.FocalLength,
      // Some cameras write ISO as a list (one value per setting): the first is the one used.
      iso: Array.isArray(iso) ? iso[0] : iso,
    }),
  );
}

/** The stored JSON read back: what is valid in it, or null. */
export function parseCameraDetails(json: string | null): CameraDetails | null {
  if (json === null) return null;
  try {
    const parsed = cameraDetails.safeParse(JSON.parse(json));
    return parsed.success ? compact(parsed.data) : null;
  } catch {
    return null;
  }
}

function compact(details: CameraDetails): CameraDetails | null {
  const kept = Object.fromEntries(Object.entries(details).filter(([, v]) => v !== undefined));
  return Object.keys(kept).length > 0 ? (kept as CameraDetails) : null;
}
