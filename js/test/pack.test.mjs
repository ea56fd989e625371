// The package as npm ships it: `npm pack` lists only the intended files, and the
// README's Node example runs unchanged from the packed tarball installed into an empty
// folder, against the emulator started as its own process (emulator/cli.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

import { PKG_DIR, ROOT } from '../test-support/package.mjs';

const run = promisify(execFile);
const npm = (args, cwd) => run('npm', [...args, '--ignore-scripts', '--no-audit', '--no-fund'], { cwd, maxBuffer: 16 << 20 });

const INTENDED_FILES = [
  'LICENSE-APACHE',
  'LICENSE-MIT',
  'README.md',
  'api.js',
  'base64.js',
  'browser.js',
  'cli.mjs',
  'deno.js',
  'edge-light.js',
  'index.d.cts',
  'index.d.ts',
  'inline.js',
  'node.cjs',
  'node.mjs',
  'package.json',
  'workerd.js',
  'yunxin_edge.js',
  'yunxin_edge_bg.wasm',
  'yunxin_edge_bg.wasm.js',
];

test('npm pack --dry-run lists only the intended files', async (t) => {
  const { stdout } = await npm(['pack', '--dry-run', '--json'], PKG_DIR);
  const [pack] = JSON.parse(stdout);
  assert.equal(pack.name, 'yunxin-edge');
  assert.deepEqual(pack.files.map((f) => f.path).sort(), INTENDED_FILES);
  t.diagnostic(`packed ${pack.size} bytes, unpacked ${pack.unpackedSize} bytes, ${pack.entryCount} files`);
});

// What issue 22 asked of the tarball: the WebAssembly once as the .wasm file and at most
// once more, as the base64 copy that the Node build (when bundled) and `inline` share.
const MAX_UNPACKED_BYTES = 900_000;
const MAX_WASM_COPIES = 2;

test('the tarball unpacks under 900 KB, with the WebAssembly in it at most twice', async (t) => {
  const { stdout } = await npm(['pack', '--dry-run', '--json'], PKG_DIR);
  const [pack] = JSON.parse(stdout);
  assert.ok(pack.unpackedSize < MAX_UNPACKED_BYTES, `unpacked ${pack.unpackedSize} bytes, over ${MAX_UNPACKED_BYTES}`);

  // A copy is the bytes themselves or their base64 text, whole or in part: 4 KB from
  // the middle of the module are looked for in every file of the tarball. Offset and
  // length are multiples of 3, so that their base64 is a substring of the whole's.
  const wasm = readFileSync(join(PKG_DIR, 'yunxin_edge_bg.wasm'));
  const middle = Math.floor(wasm.length / 2 / 3) * 3;
  const raw = wasm.subarray(middle, middle + 4095);
  const base64 = raw.toString('base64');
  const copies = pack.files
    .map((f) => f.path)
    .filter((path) => {
      const bytes = readFileSync(join(PKG_DIR, path));
      return bytes.includes(raw) || bytes.includes(base64);
    });
  t.diagnostic(`the WebAssembly is in ${copies.join(', ')}; unpacked ${pack.unpackedSize} bytes`);
  assert.deepEqual(copies.sort(), ['yunxin_edge_bg.wasm', 'yunxin_edge_bg.wasm.js']);
  assert.ok(copies.length <= MAX_WASM_COPIES);
});

// The first ```js block of the README's "## Node" section, verbatim.
function readmeNodeExample() {
  const readme = readFileSync(join(PKG_DIR, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Node'));
  const match = /```js\n([\s\S]*?)```/.exec(section ?? '');
  assert.ok(match, 'the README has a Node example');
  return match[1];
}

async function startEmulatorProcess(t, appKey, appSecret) {
  const child = spawn(process.execPath, [join(ROOT, 'emulator', 'cli.mjs'), '--port', '0'], {
    env: { ...process.env, YUNXIN_APP_KEY: appKey, YUNXIN_APP_SECRET: appSecret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  child.stderr.resume(); // one JSON line per request: not needed here
  for await (const line of createInterface({ input: child.stdout })) {
    const url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
    if (url) return url;
  }
  throw new Error('the emulator exited before listening');
}

test('the README Node example works from the packed tarball installed in an empty folder', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'yunxin-edge-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { stdout: packed } = await npm(['pack', '--json', '--pack-destination', dir], PKG_DIR);
  const tarball = join(dir, JSON.parse(packed)[0].filename);

  const app = join(dir, 'app');
  await run('mkdir', [app]);
  writeFileSync(join(app, 'package.json'), '{ "name": "app", "private": true }\n');
  await npm(['install', '--offline', tarball], app);
  writeFileSync(join(app, 'send.mjs'), readmeNodeExample());

  const appKey = 'readme-app';
  const appSecret = 'readme-秘密';
  const url = await startEmulatorProcess(t, appKey, appSecret);
  const env = { ...process.env, YUNXIN_APP_KEY: appKey, YUNXIN_APP_SECRET: appSecret, YUNXIN_BASE_URL: url };

  const { stdout } = await run(process.execPath, ['send.mjs'], { cwd: app, env });
  assert.equal(stdout, 'delivered: alice, bob, carol\n');

  // The README's CommonJS line, and a receiver Yunxin does not know.
  const cjs = `const { send, YunxinError } = require('yunxin-edge');
    send({ appKey: process.env.YUNXIN_APP_KEY, appSecret: process.env.YUNXIN_APP_SECRET },
      { sender_id: 'ops-bot', receiver_ids: ['dave', 'ghost-1'], content: 'x' }, { baseUrl: process.env.YUNXIN_BASE_URL })
      .then((report) => console.log(JSON.stringify(report), typeof YunxinError));`;
  const { stdout: cjsOut } = await run(process.execPath, ['-e', cjs], { cwd: app, env });
  assert.equal(
    cjsOut.trim(),
    '{"delivered":["dave"],"failed":[{"account_id":"ghost-1","error_code":102404,"error_msg":"account not exist","retryable":false}],"unknown":[],"not_attempted":[]} function',
  );
});
