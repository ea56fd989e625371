// Deno: the package is on disk (npm: specifiers, node_modules), so the module is read
// synchronously; fetched when served over http(s) (esm.sh and the like).
import { initSync } from './yunxin_edge.js';

const url = new URL('./yunxin_edge_bg.wasm', import.meta.url);
const bytes =
  url.protocol === 'file:' ? Deno.readFileSync(url) : new Uint8Array(await (await fetch(url)).arrayBuffer());
initSync({ module: bytes });

export * from './api.js';
