// Browsers and bundlers that emit assets (webpack 5, Vite, Parcel): `new URL(...,
// import.meta.url)` is the pattern they recognise to emit the .wasm file as an asset,
// and top-level await makes the module ready before anyone imports from it. Bundlers
// that drop the asset (Rollup without an asset plugin, esbuild, `bun build`) leave a URL
// that answers 404: that is said plainly, with the way out (`yunxin-edge/inline`).
import init from './yunxin_edge.js';

const HELP = 'bundle `yunxin-edge/inline` instead (the WebAssembly embedded), or have the bundler emit the file (see the README, "Bundlers and browsers")';

let url;
let response;
try {
  url = new URL('./yunxin_edge_bg.wasm', import.meta.url);
  response = await fetch(url);
} catch (error) {
  throw new Error(`yunxin-edge: could not load its WebAssembly (${url ?? 'no import.meta.url'}: ${error?.message ?? error}); ${HELP}`);
}
if (!response.ok) {
  throw new Error(`yunxin-edge: could not load its WebAssembly (${url}: HTTP ${response.status}); ${HELP}`);
}
await init({ module_or_path: response });

export * from './api.js';
