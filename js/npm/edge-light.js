// Vercel's edge runtime and Next.js's `runtime = 'edge'` (the `edge-light` condition):
// they refuse to compile WebAssembly from bytes at run time, and import a .wasm file
// as a compiled WebAssembly.Module with the `?module` suffix, which Next.js (webpack
// and Turbopack) and Vercel's bundler resolve at build time.
import module from './yunxin_edge_bg.wasm?module';
import { initSync } from './yunxin_edge.js';

initSync({ module });

export * from './api.js';
