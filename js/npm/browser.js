// Browsers and bundlers (webpack 5, Vite, Rollup, esbuild): `new URL(..., import.meta.url)`
// is the pattern bundlers recognise to emit the .wasm file as an asset, and top-level
// await makes the module ready before anyone imports from it.
import init from './yunxin_edge.js';

await init({ module_or_path: new URL('./yunxin_edge_bg.wasm', import.meta.url) });

export * from './api.js';
