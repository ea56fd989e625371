// Source of node.cjs, the package's one Node build. js/build.sh bundles it to CommonJS
// with esbuild (resolving imports from the package directory). node.mjs re-exports it,
// so that `import` and `require` share one WebAssembly instance and one YunxinError
// class.
//
// The WebAssembly is embedded (base64), not read from a path next to the file: a server
// bundle (esbuild --platform=node, Next.js, AWS Lambda, Vercel and Netlify functions)
// moves this code away from the package directory, and a bundler cannot see a file read
// by path. Synchronous, so that `require('yunxin-edge')` returns a ready module.
import wasmBase64 from './yunxin_edge_bg.wasm.js';
import { initSync } from './yunxin_edge.js';
import { decodeBase64 } from './base64.js';

initSync({ module: decodeBase64(wasmBase64) });

export * from './api.js';
