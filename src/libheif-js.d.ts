/** libheif-js ships no types; src/services/heif.ts describes the part it calls. */
declare module 'libheif-js/wasm-bundle.js' {
  const libheif: unknown;
  export default libheif;
}
