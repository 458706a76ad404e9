/** The part of libheif-js (libheif built for WebAssembly) this app calls; it ships no types. */
interface HeifImage {
  get_width(): number;
  get_height(): number;
  is_primary(): boolean;
  display(
    target: { data: Uint8ClampedArray; width: number; height: number },
    done: (result: { data: Uint8ClampedArray } | null) => void,
  ): void;
  free(): void;
}
interface LibHeif {
  HeifDecoder: new () => { decode(bytes: Uint8Array): HeifImage[] };
}

// Loaded with the first HEIC, like sharp: a server that never sees one never pays for it.
let libheif: Promise<LibHeif> | undefined;
const load = () => {
  libheif ??= import('libheif-js/wasm-bundle.js').then((m) => m.default as LibHeif);
  return libheif;
};

export interface DecodedHeif {
  width: number;
  height: number;
  /** 8-bit RGBA, upright (libheif applies the file's rotation and mirroring) */
  rgba: Buffer;
}

/**
 * Decodes the primary image of a HEIC/HEIF file (an iPhone photo). Refuses more than `maxPixels`
 * before decoding, as sharp does for other formats; throws on anything libheif cannot read.
 */
export async function decodeHeif(bytes: Uint8Array, maxPixels: number): Promise<DecodedHeif> {
  const images = new (await load()).HeifDecoder().decode(bytes);
  try {
    const image = images.find((i) => i.is_primary()) ?? images[0];
    if (!image) throw new Error('no image in the HEIF file');
    const width = image.get_width();
    const height = image.get_height();
    if (!(width > 0 && height > 0) || width * height > maxPixels)
      throw new Error(`a ${width} × ${height} HEIF image is beyond the pixel limit`);
    const target = { data: new Uint8ClampedArray(width * height * 4), width, height };
    const shown = await new Promise<Uint8ClampedArray>((resolve, reject) =>
      image.display(target, (result) =>
        result ? resolve(result.data) : reject(new Error('libheif could not decode the image')),
      ),
    );
    return { width, height, rgba: Buffer.from(shown.buffer, shown.byteOffset, shown.byteLength) };
  } finally {
    for (const image of images) image.free();
  }
}
