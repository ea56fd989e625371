// Access to the BUILT package (js/pkg), by name, the way a user's code reaches it.
// (Kept out of js/test/: `node --test` runs every .mjs file under a test/ directory.)
//
// js/test/node_modules/yunxin-edge is a symlink to js/pkg, created here (the same
// thing `npm install ../pkg` would create). Node resolves the link to js/pkg and applies
// the package's `exports` map, so `import('yunxin-edge')` picks node.mjs and
// `require('yunxin-edge')` picks node.cjs, as in an installed copy.
import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JS_DIR = fileURLToPath(new URL('../', import.meta.url));
export const ROOT = dirname(JS_DIR.replace(/\/$/, ''));
export const PKG_DIR = join(JS_DIR, 'pkg');
export const TEST_DIR = join(JS_DIR, 'test');
export const BIN = join(ROOT, 'node_modules', '.bin');

/** Fails loudly when js/pkg is missing, links it into js/test/node_modules. */
export function linkPackage() {
  if (!existsSync(join(PKG_DIR, 'yunxin_edge_bg.wasm')) || !existsSync(join(PKG_DIR, 'node.cjs'))) {
    throw new Error('js/pkg is not built: run js/build.sh first');
  }
  const link = join(TEST_DIR, 'node_modules', 'yunxin-edge');
  const target = relative(dirname(link), PKG_DIR);
  if (isLinkTo(link, target)) return;
  mkdirSync(dirname(link), { recursive: true });
  try {
    symlinkSync(target, link, 'dir');
  } catch (error) {
    // Test files run in parallel processes: another one may have just made the link.
    if (error.code !== 'EEXIST') throw error;
    if (isLinkTo(link, target)) return;
    rmSync(link, { recursive: true, force: true });
    symlinkSync(target, link, 'dir');
  }
}

function isLinkTo(link, target) {
  try {
    return lstatSync(link).isSymbolicLink() && readlinkSync(link) === target;
  } catch {
    return false;
  }
}
