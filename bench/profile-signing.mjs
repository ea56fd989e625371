// CPU profile of the npm package's signing in Node, for BENCHMARKS.md (not part of
// bench/run). js/pkg's .wasm has its names stripped (wasm-opt --strip-debug), so this
// loads the same build before wasm-opt: it runs wasm-bindgen (the CLI js/build.sh uses)
// on target/wasm32-unknown-unknown/npm/yunxin_edge_js.wasm into a temporary
// directory, next to a copy of js/pkg/api.js, and profiles that with node:inspector.
//
//   node bench/profile-signing.mjs [checksum|signHeaders] [calls=300000]
//
// Run ./js/build.sh first (it builds that .wasm).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [what = 'checksum', callsArg = '300000'] = process.argv.slice(2);
const calls = Math.min(Number(callsArg), 5_000_000);
const targetDir = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { encoding: 'utf8' })).target_directory;
const dir = mkdtempSync(join(tmpdir(), 'yunxin-profile-'));
try {
  execFileSync(process.env.WASM_BINDGEN_BIN ?? 'wasm-bindgen', [
    '--target', 'web', '--no-typescript', '--out-dir', dir, '--out-name', 'yunxin_edge',
    join(targetDir, 'wasm32-unknown-unknown/npm/yunxin_edge_js.wasm'),
  ]);
  copyFileSync('js/pkg/api.js', join(dir, 'api.js'));
  const glue = await import(join(dir, 'yunxin_edge.js'));
  glue.initSync({ module: readFileSync(join(dir, 'yunxin_edge_bg.wasm')) });
  const api = await import(join(dir, 'api.js'));

  const credentials = { appKey: 'bench-app-key-0123456789abcdef', appSecret: 'a1b2c3d4e5f6' };
  const fn =
    what === 'signHeaders'
      ? () => api.signHeaders(credentials).CheckSum
      : () => api.checksum('a1b2c3d4e5f6', '0123456789abcdef0123456789abcdef', '1795745094');
  let sink = 0;
  for (let i = 0; i < 50_000; i++) sink += fn().length; // warm-up

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink += fn().length;
  const ns = Number(process.hrtime.bigint() - started) / calls;
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  if (sink === 0) throw new Error('nothing computed');

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { functionName, url } = byId.get(id).callFrame;
    const where = /\.wasm/.test(url) ? ' [wasm]' : url ? ` ${url.split('/').pop()}` : '';
    const key = `${functionName || '(anonymous)'}${where}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  console.log(`${what}: ${calls} calls, ${ns.toFixed(0)} ns per call while profiling; self time:`);
  for (const [key, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    const k = key.length > 110 ? `${key.slice(0, 107)}...` : key;
    console.log(`  ${((100 * t) / total).toFixed(1).padStart(5)} %  ${((t / total) * ns).toFixed(0).padStart(5)} ns  ${k}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
