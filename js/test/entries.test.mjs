// Each runtime's entry file of the built package: the exports map sends each runtime to
// its entry, and each entry loads the WebAssembly its runtime's way. Run in child
// processes, because one process shares a single instance of the glue between entries.
// (workerd.js runs in real workerd in js-worker.test.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
  // Order matters: the first matching condition wins, and Node also matches "node"
  // under Deno, wrangler and bundlers targeting the browser.
  assert.deepEqual(Object.keys(root), ['workerd', 'deno', 'node', 'browser', 'module', 'require', 'default']);
  const targets = [root.workerd, root.deno, root.node.import, root.node.require, root.browser, root.module, root.require, root.default];
  for (const target of targets) {
    assert.deepEqual(Object.keys(target), ['types', 'default'], 'types must come first');
    for (const file of Object.values(target)) {
      assert.ok(existsSync(join(PKG_DIR, file)), `${file} is missing`);
      assert.ok(pkg.files.includes(file.replace('./', '')), `${file} is not in "files"`);
    }
  }
  assert.equal(root.node.require.types, './index.d.cts');
  assert.equal(pkg.name, 'yunxin-edge');
  assert.equal(pkg.version, '0.1.0');
  assert.equal(pkg.license, 'MIT OR Apache-2.0');
});

test('conditions resolve to their entries', async () => {
  linkPackage();
  const resolve = (conditions) =>
    node(conditions.flatMap((c) => ['-C', c]), "console.log(import.meta.resolve('yunxin-edge'))");
  assert.match(await resolve([]), /\/pkg\/node\.mjs$/);
  assert.match(await resolve(['workerd']), /\/pkg\/workerd\.js$/);
  assert.match(await resolve(['deno']), /\/pkg\/deno\.js$/);
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
