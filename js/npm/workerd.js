// Cloudflare Workers (workerd): wrangler and workerd import a .wasm file as a compiled
// WebAssembly.Module, which is instantiated synchronously. Instantiation is allowed at
// global scope; drawing random numbers is not, and nothing here does.
import module from './yunxin_edge_bg.wasm';
import { initSync } from './yunxin_edge.js';

initSync({ module });

export * from './api.js';
