// Each runtime's entry file of the built package: the exports map sends each runtime to
// its entry, and each entry loads the WebAssembly its runtime's way. Run in child
// processes, because one process shares a single instance of the glue between entries.
// (workerd.js runs in real workerd in js-worker.test.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { PKG_DIR, TEST_DIR, linkPackage } from '../test-support/package.mjs';

const run = promisify(execFile);
const VECTOR = "checksum('secret', 'abc', '1443592222')";
const EXPECTED = '6461e65304e590d2268093aa1d290482274995b9';

// Runs an ES module snippet in a fresh Node process, from js/test (where the package is linked).
async function node(args, source) {
  const { stdout } = await run(process.execPath, [...args, '--input-type=module', '-e', source], { cwd: TEST_DIR });
  return stdout.trim();
}

test('the exports map: one entry per runtime, types for import and require', () => {
  const pkg = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8'));
  const root = pkg.exports['.'];
  // Order matters: the first matching condition wins. Workers and Vercel's edge runtime
  // come before everything else (wrangler also matches `worker` and `browser`, Next.js's
  // edge runtime `worker` and `browser`), Deno and Bun before `node` (they match it too).
  assert.deepEqual(Object.keys(root), ['workerd', 'edge-light', 'deno', 'bun', 'node', 'worker', 'browser', 'module', 'require', 'default']);
  assert.deepEqual(Object.keys(pkg.exports['./inline']), ['workerd', 'edge-light', 'bun', 'node', 'require', 'default']);
  const leaves = (target) =>
    'default' in target && typeof target.default === 'string' ? [target] : Object.values(target).flatMap(leaves);
  for (const target of [...leaves(root), ...leaves(pkg.exports['./inline'])]) {
    assert.deepEqual(Object.keys(target), ['types', 'default'], 'types must come first');
    for (const file of Object.values(target)) {
      assert.ok(existsSync(join(PKG_DIR, file)), `${file} is missing`);
      assert.ok(pkg.files.includes(file.replace('./', '')), `${file} is not in "files"`);
    }
  }
  assert.deepEqual(root.bun, root.node);
  assert.equal(root.node.require.types, './index.d.cts');
  assert.equal(root.worker.default, './inline.js');
  assert.equal(pkg.exports['./inline'].default.default, './inline.js');
  assert.equal(pkg.name, 'yunxin-edge');
  assert.equal(pkg.version, '0.1.0');
  assert.equal(pkg.license, 'MIT OR Apache-2.0');
});

test('the Node build holds no copy of the WebAssembly: the .wasm file, or the base64 module a bundler follows', () => {
  const nodeBuild = readFileSync(join(PKG_DIR, 'node.cjs'), 'utf8');
  const wasm = readFileSync(join(PKG_DIR, 'yunxin_edge_bg.wasm'));
  const embedded = /export default "([A-Za-z0-9+/=]+)";/.exec(readFileSync(join(PKG_DIR, 'yunxin_edge_bg.wasm.js'), 'utf8'));
  assert.ok(embedded, 'yunxin_edge_bg.wasm.js exports the base64 text');
  assert.ok(Buffer.from(embedded[1], 'base64').equals(wasm), 'the embedded module is the .wasm file');
  assert.ok(!nodeBuild.includes(embedded[1].slice(0, 4096)), 'node.cjs embeds no copy of its own');
  // A static require() that server bundlers follow to embed the base64 module.
  assert.match(nodeBuild, /require\("\.\/yunxin_edge_bg\.wasm\.js"\)/);
  assert.doesNotMatch(nodeBuild, /import\.meta/);
  // The glue's own default URL is gone: only browser.js asks bundlers for the asset.
  assert.doesNotMatch(readFileSync(join(PKG_DIR, 'yunxin_edge.js'), 'utf8'), /import\.meta/);
});

test('node.cjs run from the package reads the .wasm file next to it, and only that', async () => {
  const { stdout } = await run(process.execPath, [
    '-e',
    `const fs = require('node:fs');
     const read = fs.readFileSync;
     const files = [];
     fs.readFileSync = (path, ...rest) => (files.push(require('node:path').basename(String(path))), read(path, ...rest));
     const loaded = [];
     const { checksum } = require(${JSON.stringify(join(PKG_DIR, 'node.cjs'))});
     for (const id of Object.keys(require.cache)) loaded.push(require('node:path').basename(id));
     console.log(files.filter((f) => f.includes('wasm')).join(), loaded.includes('yunxin_edge_bg.wasm.js'), ${VECTOR});`,
  ]);
  assert.equal(stdout.trim(), `yunxin_edge_bg.wasm false ${EXPECTED}`);
});

test('a server bundle of the Node build carries the base64 module and runs anywhere', { timeout: 60_000 }, async (t) => {
  // esbuild --platform=node, CommonJS (a __dirname without the .wasm) and ESM (no
  // __dirname at all), each run from a folder of its own without node_modules.
  linkPackage();
  const { build } = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'yunxin-edge-bundle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const contents = `import { checksum } from 'yunxin-edge';\nconsole.log(${VECTOR});\n`;
  for (const [format, file] of [['cjs', 'bundle.cjs'], ['esm', 'bundle.mjs']]) {
    await build({ stdin: { contents, resolveDir: TEST_DIR }, bundle: true, platform: 'node', format, outfile: join(dir, file), logLevel: 'warning' });
    const { stdout } = await run(process.execPath, [file], { cwd: dir });
    assert.equal(stdout.trim(), EXPECTED, format);
  }
});

test('conditions resolve to their entries', async () => {
  linkPackage();
  const resolve = (conditions) =>
    node(conditions.flatMap((c) => ['-C', c]), "console.log(import.meta.resolve('yunxin-edge'))");
  assert.match(await resolve([]), /\/pkg\/node\.mjs$/);
  assert.match(await resolve(['workerd']), /\/pkg\/workerd\.js$/);
  assert.match(await resolve(['deno']), /\/pkg\/deno\.js$/);
  assert.match(await resolve(['edge-light']), /\/pkg\/edge-light\.js$/);
  assert.match(await resolve(['bun']), /\/pkg\/node\.mjs$/);
  const inline = (conditions) =>
    node(conditions.flatMap((c) => ['-C', c]), "console.log(import.meta.resolve('yunxin-edge/inline'))");
  assert.match(await inline([]), /\/pkg\/node\.mjs$/);
  assert.match(await inline(['workerd']), /\/pkg\/workerd\.js$/);
});

test('inline.js works with nothing but atob: no fetch, no file, no top-level await', async () => {
  const out = await node(
    [],
    `globalThis.fetch = () => { throw new Error('fetched'); };
     const { checksum } = await import(${JSON.stringify(join(PKG_DIR, 'inline.js'))});
     console.log(${VECTOR});`,
  );
  assert.equal(out, EXPECTED);
  assert.doesNotMatch(readFileSync(join(PKG_DIR, 'inline.js'), 'utf8'), /^await /m);
});

test('browser.js names the way out when the bundler dropped the .wasm', async () => {
  await assert.rejects(
    node(
      [],
      `globalThis.fetch = async () => new Response('not found', { status: 404 });
       await import(${JSON.stringify(join(PKG_DIR, 'browser.js'))});`,
    ),
    (error) => {
      assert.match(error.stderr, /could not load its WebAssembly \(file:.*yunxin_edge_bg\.wasm: HTTP 404\); bundle `yunxin-edge\/inline`/);
      return true;
    },
  );
});

test('deno.js reads the .wasm with Deno.readFileSync', async () => {
  linkPackage();
  const out = await node(
    ['-C', 'deno'],
    `import { readFileSync } from 'node:fs';
     let reads = 0;
     globalThis.Deno = { readFileSync: (url) => (reads++, readFileSync(url)) };
     const { checksum } = await import('yunxin-edge');
     console.log(reads, ${VECTOR});`,
  );
  assert.equal(out, `1 ${EXPECTED}`);
});

test('browser.js fetches the .wasm next to itself and is ready after import', async () => {
  const out = await node(
    [],
    `import { readFileSync } from 'node:fs';
     const fetched = [];
     globalThis.fetch = async (url) => {
       fetched.push(String(url));
       return new Response(readFileSync(url), { headers: { 'content-type': 'application/wasm' } });
     };
     const { checksum } = await import(${JSON.stringify(join(PKG_DIR, 'browser.js'))});
     console.log(fetched.map((u) => u.split('/').pop()).join(), ${VECTOR});`,
  );
  assert.equal(out, `yunxin_edge_bg.wasm ${EXPECTED}`);
});
