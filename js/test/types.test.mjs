// The package's TypeScript declarations: a usage file (ESM and CommonJS flavours) is
// compiled with `tsc --noEmit` against the BUILT package, resolved through its
// `exports` map, and the public surface contains no `any`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { BIN, PKG_DIR, TEST_DIR, linkPackage } from '../test-support/package.mjs';

const run = promisify(execFile);

test('usage.ts and usage-require.cts type-check against the built declarations', { timeout: 120_000 }, async () => {
  linkPackage();
  const project = join(TEST_DIR, 'types');
  const { stdout } = await run(join(BIN, 'tsc'), ['--noEmit', '-p', project, '--explainFiles'], { maxBuffer: 16 << 20 }).catch(
    (error) => assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`),
  );
  // Resolved from js/pkg through the exports map: `import` → index.d.ts, `require` → index.d.cts.
  assert.match(stdout, /js\/pkg\/index\.d\.ts/);
  assert.match(stdout, /js\/pkg\/index\.d\.cts/);
});

test('the declarations type-check with lib es2022 alone (no DOM lib, no @types/node)', { timeout: 120_000 }, async () => {
  linkPackage();
  await run(join(BIN, 'tsc'), ['--noEmit', '-p', join(TEST_DIR, 'types', 'es2022')], { maxBuffer: 16 << 20 }).catch((error) =>
    assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`),
  );
});

test('the declarations have no `any`, and are in the package once', () => {
  const declarations = readFileSync(join(PKG_DIR, 'index.d.cts'), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '') // comments may say "any"
    .replace(/\/\/.*$/gm, '');
  assert.doesNotMatch(declarations, /\bany\b/);
  // index.d.ts (import) re-exports index.d.cts (require): one copy in the tarball.
  assert.match(readFileSync(join(PKG_DIR, 'index.d.ts'), 'utf8'), /^export \* from '\.\/index\.cjs';$/m);
  assert.ok(readFileSync(join(PKG_DIR, 'index.d.ts'), 'utf8').length < 200);
});
