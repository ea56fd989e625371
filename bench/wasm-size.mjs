// Size profile of a .wasm file, for BENCHMARKS.md: bytes per section (raw and gzip -9),
// and the code section's bytes per crate and per function, read from the "name" section
// (rustc writes demangled names; worker-build keeps them). No dependencies: it walks the
// binary format itself.
//
//   node bench/wasm-size.mjs worker/build/index_bg.wasm [top-N functions, default 25]
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const path = process.argv[2];
if (!path) throw new Error('usage: node bench/wasm-size.mjs FILE.wasm [N]');
const top = Number(process.argv[3] ?? 25);
const bytes = readFileSync(path);
const gz = (b) => gzipSync(b, { level: 9 }).length;

let pos = 8;
function leb() {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return result;
  }
}
function name() {
  const len = leb();
  const s = bytes.toString('utf8', pos, pos + len);
  pos += len;
  return s;
}
function skipLimits() {
  const flags = bytes[pos++];
  leb();
  if (flags & 1) leb();
}
function skipRefType() {
  const t = bytes[pos++];
  if (t === 0x63 || t === 0x64) leb(); // (ref null? heaptype), heaptype as s33
}

const SECTION = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export', 'start', 'element', 'code', 'data', 'datacount', 'tag'];
const sections = [];
let importedFunctions = 0;
let bodies = [];
const names = new Map();
const dataSegments = [];

while (pos < bytes.length) {
  const id = bytes[pos++];
  const size = leb();
  const start = pos;
  const end = start + size;
  let label = SECTION[id] ?? `section ${id}`;
  if (id === 0) label = `custom "${name()}"`;
  if (id === 2) {
    for (let n = leb(), i = 0; i < n; i++) {
      name();
      name();
      const kind = bytes[pos++];
      if (kind === 0) {
        importedFunctions++;
        leb();
      } else if (kind === 1) {
        skipRefType();
        skipLimits();
      } else if (kind === 2) {
        skipLimits();
      } else if (kind === 3) {
        skipRefType();
        pos++;
      } else if (kind === 4) {
        pos++;
        leb();
      }
    }
  }
  if (id === 10) {
    bodies = [];
    for (let n = leb(), i = 0; i < n; i++) {
      const len = leb();
      bodies.push({ index: importedFunctions + i, size: len, bytes: bytes.subarray(pos, pos + len) });
      pos += len;
    }
  }
  if (id === 11) {
    for (let n = leb(), i = 0; i < n; i++) {
      const flags = leb();
      if (flags === 2) leb();
      if (flags !== 1) while (bytes[pos++] !== 0x0b); // the offset expression, up to `end`
      const len = leb();
      dataSegments.push(bytes.subarray(pos, pos + len));
      pos += len;
    }
  }
  if (label === 'custom "name"') {
    while (pos < end) {
      const sub = bytes[pos++];
      const subSize = leb();
      const subEnd = pos + subSize;
      if (sub === 1) for (let n = leb(), i = 0; i < n; i++) names.set(leb(), name());
      pos = subEnd;
    }
  }
  sections.push({ label, size, gzip: gz(bytes.subarray(start, end)) });
  pos = end;
}

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
console.log(`${path}: ${kb(bytes.length)} raw, ${kb(gz(bytes))} zlib level 9 (GNU gzip -9 differs by a few per cent), ${bodies.length} functions`);
console.log('\nsections (zlib level 9 of each section alone):');
for (const s of [...sections].sort((a, b) => b.size - a.size)) {
  console.log(`  ${s.label.padEnd(28)} ${kb(s.size).padStart(10)} raw ${kb(s.gzip).padStart(10)} gzip`);
}

// The data section: text (messages, source paths, type names) against the rest (tables).
{
  const data = Buffer.concat(dataSegments);
  let text = 0;
  const byCrateText = new Map();
  const runs = data.toString('latin1').match(/[\x20-\x7e\n]{8,}/g) ?? [];
  for (const run of runs) {
    text += run.length;
    const crate = /registry\/src\/[^/]+\/([A-Za-z0-9_-]+?)-[0-9]+\.[0-9]+\.[0-9]+/.exec(run)?.[1];
    if (crate) byCrateText.set(crate, (byCrateText.get(crate) ?? 0) + run.length);
  }
  console.log(`\ndata segments: ${kb(data.length)}; ${kb(text)} in printable runs of 8+ bytes (messages, paths, names), ${kb(data.length - text)} other (tables, constants)`);
  const paths = [...byCrateText].sort((a, b) => b[1] - a[1]).slice(0, 8);
  if (paths.length) console.log(`  text runs naming a crate's source file: ${paths.map(([c, n]) => `${c} ${kb(n)}`).join(', ')}`);
}

/** The crate a demangled Rust name belongs to: its first path segment. */
function crateOf(name) {
  if (!name) return '(unnamed)';
  const fn = name.replace(/\[[0-9a-f]{16}\]/g, ''); // rustc's crate disambiguators
  if (/^<?(str|\[|f32|f64|u8|u16|u32|u64|usize|i8|i16|i32|i64|isize|char|bool)\b/.test(fn.replace(/^<+/, ''))) {
    return 'core (methods of primitive types)';
  }
  const m = /^<?&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)(::|$| as )/.exec(fn);
  return m ? m[1] : fn.split(/[^A-Za-z0-9_]/)[0] || fn;
}

const byCrate = new Map();
for (const b of bodies) {
  const crate = crateOf(names.get(b.index));
  const c = byCrate.get(crate) ?? { size: 0, count: 0, parts: [] };
  c.size += b.size;
  c.count++;
  c.parts.push(b.bytes);
  byCrate.set(crate, c);
}
const codeTotal = bodies.reduce((s, b) => s + b.size, 0);
console.log(`\ncode section by crate (first path segment of the function's name; ${kb(codeTotal)} of function bodies):`);
for (const [crate, c] of [...byCrate].sort((a, b) => b[1].size - a[1].size).slice(0, 20)) {
  const share = ((100 * c.size) / codeTotal).toFixed(1);
  console.log(`  ${crate.padEnd(28)} ${kb(c.size).padStart(10)} ${share.padStart(5)} %  ${String(c.count).padStart(5)} functions  ~${kb(gz(Buffer.concat(c.parts)))} compressed alone`);
}
console.log(`\nlargest ${top} functions:`);
for (const b of [...bodies].sort((a, b) => b.size - a.size).slice(0, top)) {
  const fn = names.get(b.index) ?? `#${b.index}`;
  console.log(`  ${kb(b.size).padStart(9)}  ${fn.length > 110 ? `${fn.slice(0, 107)}...` : fn}`);
}
