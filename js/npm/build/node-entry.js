// Source of node.cjs, the package's one Node build. js/build.sh bundles it to CommonJS
// with esbuild (resolving imports from the package directory), so `__dirname` is the
// package directory at run time. node.mjs re-exports it, so that `import` and `require`
// share one WebAssembly instance and one YunxinError class.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initSync } from './yunxin_edge.js';

// Synchronous, so that `require('yunxin-edge')` returns a ready module.
initSync({ module: readFileSync(join(__dirname, 'yunxin_edge_bg.wasm')) });

export * from './api.js';
