// Source of node.cjs, the package's one Node build. js/build.sh bundles it to CommonJS
// with esbuild (resolving imports from the package directory). node.mjs re-exports it,
// so that `import` and `require` share one WebAssembly instance and one YunxinError
// class.
//
// Where its WebAssembly comes from, so that the package holds the module once as a file
// and once as base64 (shared with `yunxin-edge/inline`), and node.cjs holds neither:
//
// - run from the package directory (Node, Bun, Jest, a server that keeps node_modules,
//   Lambda and Vercel functions traced file by file): the .wasm file next to node.cjs,
//   read synchronously;
// - inside a server bundle (esbuild --platform=node, webpack and Turbopack in Next.js):
//   the bundle's directory has no .wasm, and a bundler cannot see a file read by path,
//   but it follows the static require() of ./yunxin_edge_bg.wasm.js below and embeds
//   that module, the base64 copy.
//
// Synchronous either way, so that `require('yunxin-edge')` returns a ready module.
import { initSync } from './yunxin_edge.js';
import { decodeBase64 } from './base64.js';

initSync({ module: wasmBytes() });

export * from './api.js';

function wasmBytes() {
  // `__dirname` is node.cjs's own directory when it runs unbundled, a CommonJS bundle's
  // directory when bundled, and not defined at all in an ES module bundle.
  if (typeof __dirname === 'string') {
    try {
      return require('node:fs').readFileSync(require('node:path').join(__dirname, 'yunxin_edge_bg.wasm'));
    } catch {
      // No .wasm next to this code: a bundle, which carries the base64 copy.
    }
  }
  // js/build.sh keeps this require() out of node.cjs (esbuild --external), for the
  // bundler of the application to follow.
  return decodeBase64(require('./yunxin_edge_bg.wasm.js').default);
}
