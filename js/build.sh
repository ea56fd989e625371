#!/usr/bin/env bash
# Builds the npm package `yunxin-edge` into js/pkg/, offline:
#
#   1. the wasm-bindgen exports (js/src) for wasm32-unknown-unknown, profile `npm`;
#   2. wasm-bindgen's glue, `--target web`: one ES module whose initSync() takes bytes or
#      a WebAssembly.Module, so one build serves every runtime through tiny entry files;
#   3. wasm-opt -Oz (binaryen from npm: Debian's is broken);
#   4. yunxin_edge_bg.wasm.js: the same .wasm as base64 text in an ES module, the one
#      embedded copy, for the entries that must not depend on a file next to them
#      (`yunxin-edge/inline`, and the Node build once a server bundler has moved it);
#   5. the hand-written sources (js/npm: package.json, entries, types, README, licenses,
#      the command-line tool cli.mjs);
#   6. node.cjs, the Node build, bundled to CommonJS with esbuild: the glue and api.js,
#      but no copy of the .wasm (it reads the file next to it, or requires the base64
#      module when bundled: js/npm/build/node-entry.js);
#
# then prints the packed size and the raw and gzip size of the .wasm.
# Tools (all installed by scripts/setup and npm; nothing is downloaded here):
#   WASM_BINDGEN_BIN  wasm-bindgen CLI at the crate's exact version (default: on PATH)
#   WASM_OPT_BIN      default: node_modules/.bin/wasm-opt at the repository root
#   ESBUILD_BIN       default: node_modules/.bin/esbuild at the repository root
set -euo pipefail

js_dir="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$js_dir")"
cd "$root"

wasm_bindgen="${WASM_BINDGEN_BIN:-wasm-bindgen}"
wasm_opt="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
esbuild="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'js/build.sh: %s\n' "$*" >&2; exit 1; }

for tool in "$wasm_bindgen" "$wasm_opt" "$esbuild"; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup and npm ci at the repository root)"
done

# The glue and the crate speak a private protocol that changes between patch versions:
# a mismatched CLI produces a package that fails at load time, so refuse early.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
have="$("$wasm_bindgen" --version | awk '{ print $2 }')"
[ "$want" = "$have" ] || die "wasm-bindgen CLI is $have but the crate uses $want"

step "cargo build (wasm32-unknown-unknown, profile npm)"
# The same sources give the same .wasm on any machine: its panic locations name the
# dependencies' source files under $CARGO_HOME, which differs between machines, so that
# prefix is written as /cargo. (The GitHub Action's committed bundle embeds the .wasm,
# and js/test/action.test.mjs compares it with a fresh build.) With --target, RUSTFLAGS
# reach the wasm32 build only, not build scripts.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=${cargo_home%/}=/cargo" \
  cargo build -p yunxin-edge-js --profile npm --target wasm32-unknown-unknown
target_dir="$(cargo metadata --format-version 1 --no-deps |
  node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).target_directory)')"

# Built next to js/pkg and swapped in at the end, so a failed build leaves the previous
# package intact and nobody sees a half-written one.
staging="$js_dir/pkg.staging"
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging"

step "wasm-bindgen $have --target web"
"$wasm_bindgen" --target web --no-typescript --out-dir "$staging" --out-name yunxin_edge \
  "$target_dir/wasm32-unknown-unknown/npm/yunxin_edge_js.wasm"

step "wasm-opt -Oz"
# The features rustc enables for wasm32-unknown-unknown by default, named
# because the release profile strips the section that would tell wasm-opt.
"$wasm_opt" -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$staging/yunxin_edge_bg.wasm" -o "$staging/yunxin_edge_bg.wasm"

step "glue: no default wasm URL, modules from any realm"
# Every entry hands the glue its module or bytes; the glue's own fallback,
# `new URL('yunxin_edge_bg.wasm', import.meta.url)`, would only make bundlers emit the
# .wasm next to bundles that embed it (yunxin-edge/inline, Node). Replaced, once, by an error.
node - "$staging/yunxin_edge.js" <<'EOF_NODE'
const fs = require('fs');
const [file] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
const fallback = "module_or_path = new URL('yunxin_edge_bg.wasm', import.meta.url);";
const count = text.split(fallback).length - 1;
if (count !== 1) throw new Error(`expected the glue's default wasm URL once, found it ${count} times`);
let patched = text.replace(fallback, "throw new Error('yunxin-edge: the WebAssembly module was not given');");
// initSync() tells a compiled module from bytes with `instanceof WebAssembly.Module`,
// which is false for a module compiled in another realm: Next.js's edge runtime runs
// the route in a vm context and hands it the module its host compiled (`?module`).
const brand = 'if (!(module instanceof WebAssembly.Module)) {';
if (patched.split(brand).length !== 2) throw new Error('expected the glue to test `instanceof WebAssembly.Module` once');
patched = patched.replace(brand, "if (Object.prototype.toString.call(module) !== '[object WebAssembly.Module]') {");
fs.writeFileSync(file, patched);
EOF_NODE

step "yunxin_edge_bg.wasm.js (base64)"
node -e 'const fs = require("fs"); const [wasm, out] = process.argv.slice(1);
  fs.writeFileSync(out, `// yunxin_edge_bg.wasm as base64 (generated by js/build.sh)\nexport default ${JSON.stringify(fs.readFileSync(wasm).toString("base64"))};\n`);' \
  "$staging/yunxin_edge_bg.wasm" "$staging/yunxin_edge_bg.wasm.js"

step "package sources"
cp "$js_dir"/npm/{package.json,README.md,LICENSE-MIT,LICENSE-APACHE} "$staging/"
cp "$js_dir"/npm/{api.js,base64.js,node.mjs,workerd.js,deno.js,browser.js,inline.js,edge-light.js,cli.mjs} "$staging/"
# The declarations once, as index.d.cts (what `require` gets under TypeScript's
# node16/nodenext resolution, which reads a .d.ts in a "type": "module" package as ESM
# only), and index.d.ts re-exporting them: ESM declarations may re-export CommonJS ones
# in every TypeScript, the other way round only from 5.x on (TS1479 in 5.0).
cp "$js_dir/npm/index.d.ts" "$staging/index.d.cts"
printf '%s\n' "// The declarations of yunxin-edge are in index.d.cts, for import and require alike." \
  "export * from './index.cjs';" >"$staging/index.d.ts"

step "esbuild node.cjs"
# The entry is bundled from inside the package directory so that its imports resolve to
# the files just assembled, then removed. import.meta is only used by the glue's async
# loader, which the Node build never calls. The base64 module stays a require() of its
# own (--external): one copy in the package, which the application's bundler embeds.
# Whitespace and syntax minified (names kept, for stack traces): its readable sources,
# api.js and yunxin_edge.js, are in the package beside it.
cp "$js_dir/npm/build/node-entry.js" "$staging/node-entry.js"
"$esbuild" "$staging/node-entry.js" --bundle --format=cjs --platform=node --target=node20 \
  --external:./yunxin_edge_bg.wasm.js --minify-whitespace --minify-syntax \
  --log-level=warning --log-override:empty-import-meta=silent --outfile="$staging/node.cjs"
rm "$staging/node-entry.js"

rm -rf "$js_dir/pkg"
mv "$staging" "$js_dir/pkg"
trap - EXIT

step "sizes"
wasm="$js_dir/pkg/yunxin_edge_bg.wasm"
wasm_raw="$(wc -c <"$wasm")"
wasm_gzip="$(gzip -9c "$wasm" | wc -c)"
packed="$(cd "$js_dir/pkg" && npm pack --dry-run --json --ignore-scripts 2>/dev/null |
  node -e 'const [p] = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(`${p.filename}: ${p.size} bytes packed, ${p.unpackedSize} unpacked, ${p.entryCount} files`)')"
echo "package: $packed"
echo "wasm:    $wasm_raw bytes raw, $wasm_gzip bytes gzip -9"
