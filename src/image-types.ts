/**
 * The only image types we keep, with the name people know each by and the extension a download
 * gets. SVG and HTML never: they can carry script.
 */
export const ACCEPTED_TYPES: ReadonlyMap<string, { name: string; extension: string }> = new Map([
  ['image/jpeg', { name: 'JPEG', extension: 'jpg' }],
  ['image/png', { name: 'PNG', extension: 'png' }],
  ['image/gif', { name: 'GIF', extension: 'gif' }],
  ['image/webp', { name: 'WebP', extension: 'webp' }],
  ['image/avif', { name: 'AVIF', extension: 'avif' }],
  ['image/tiff', { name: 'TIFF', extension: 'tif' }],
  // iPhones' photos. Browsers do not show them: the copies people see are WebP, the original is kept.
  ['image/heic', { name: 'HEIC', extension: 'heic' }],
  ['image/heif', { name: 'HEIF', extension: 'heif' }],
]);

/** The types sharp's libvips cannot decode (no HEVC in its prebuilt binaries): libheif does. */
export const HEIF_TYPES: ReadonlySet<string> = new Set(['image/heic', 'image/heif']);

/** For a file input's accept attribute, which the upload script reads back. */
export const ACCEPT = [...ACCEPTED_TYPES.keys()].join(',');

/** "JPEG, PNG, GIF, WebP, AVIF, TIFF, HEIC or HEIF" */
export const ACCEPTED_NAMES = new Intl.ListFormat('en-GB', { type: 'disjunction' }).format(
  [...ACCEPTED_TYPES.values()].map((t) => t.name),
);

/** Whether a kept file is one of our image types; anything else (kept with ACCEPT=any) is a file. */
export const isImageType = (contentType: string): boolean => ACCEPTED_TYPES.has(contentType);

/**
 * Other files' types (ACCEPT=any) recorded as what their first bytes say, by the name people know
 * them by; any other type is recorded as application/octet-stream and named by its extension.
 */
export const FILE_TYPE_NAMES: ReadonlyMap<string, string> = new Map([
  ['application/pdf', 'PDF'],
  ['application/zip', 'ZIP'],
  ['application/gzip', 'GZIP'],
  ['application/x-bzip2', 'BZ2'],
  ['application/x-xz', 'XZ'],
  ['application/x-tar', 'TAR'],
  ['application/x-7z-compressed', '7Z'],
  ['application/x-rar-compressed', 'RAR'],
  ['application/epub+zip', 'EPUB'],
  ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'DOCX'],
  ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'XLSX'],
  ['application/vnd.openxmlformats-officedocument.presentationml.presentation', 'PPTX'],
  ['application/vnd.oasis.opendocument.text', 'ODT'],
  ['application/vnd.oasis.opendocument.spreadsheet', 'ODS'],
  ['audio/mpeg', 'MP3'],
  ['audio/wav', 'WAV'],
  ['audio/x-flac', 'FLAC'],
  ['audio/ogg', 'OGG'],
  ['audio/mp4', 'M4A'],
  ['video/mp4', 'MP4'],
  ['video/quicktime', 'MOV'],
  ['video/webm', 'WEBM'],
  ['video/x-matroska', 'MKV'],
]);

/** What a file's card calls it: "PDF", else its name's extension ("TXT"), else "File". */
export function fileTypeLabel(contentType: string, name: string): string {
  const known = FILE_TYPE_NAMES.get(contentType);
  if (known) return known;
  const extension = /\.([\p{L}\p{N}]{1,8})$/u.exec(name)?.[1];
  return extension ? extension.toUpperCase() : 'File';
}
