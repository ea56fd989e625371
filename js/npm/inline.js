// `yunxin-edge/inline` (and the `worker` condition): the WebAssembly embedded in the
// JavaScript as base64 (./yunxin_edge_bg.wasm.js), compiled synchronously at import.
// For bundlers that do not emit the .wasm asset of `new URL(..., import.meta.url)`
// (Rollup without an asset plugin, esbuild, `bun build`) and runtimes without a file
// system. Nothing is fetched, no top-level await; it costs a third more bytes than the
// .wasm file. Workers and Vercel's edge runtime may not compile WebAssembly from
// bytes: the exports map gives them workerd.js and edge-light.js instead.
import wasmBase64 from './yunxin_edge_bg.wasm.js';
import { initSync } from './yunxin_edge.js';
import { decodeBase64 } from './base64.js';

initSync({ module: decodeBase64(wasmBase64) });

export * from './api.js';
