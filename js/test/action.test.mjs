// The GitHub Action (action/): its committed bundle, action/dist/index.mjs, run the way
// the runner runs it (node, INPUT_* variables, the GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
// files, a workspace as working directory) against the project's Yunxin emulator on
// 127.0.0.1; and the bundle checked against a fresh build of its sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startEmulator } from '../../emulator/index.mjs';
import { ROOT } from '../test-support/package.mjs';

const ACTION = join(ROOT, 'action');
const ENTRY = join(ACTION, 'dist', 'index.mjs');
const KEY = 'action-app-key';
// Distinctive, so that a leak anywhere is found by a plain search.
const SECRET = 'Action-Secret-Sentinel-4d1e';

test('the committed bundle is what action/build.mjs makes now from action/src and js/pkg', async () => {
  const { bundle } = await import(join(ACTION, 'build.mjs'));
  const fresh = await bundle();
  assert.ok(existsSync(ENTRY), 'action/dist/index.mjs is committed');
  // Not assert.equal: a 400 KB diff helps nobody; the way out does.
  assert.ok(
    readFileSync(ENTRY, 'utf8') === fresh,
    'action/dist/index.mjs is stale: run ./js/build.sh, then node action/build.mjs, and commit it',
  );
});

// The few shapes of action.yml this test reads: `key: value` and nested mappings.
function readYaml(text) {
  const root = {};
  const stack = [{ indent: -1, node: root }];
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const [, spaces, key, value] = /^( *)([\w-]+):\s*(.*)$/.exec(line) ?? assert.fail(`unexpected line in action.yml: ${line}`);
    while (spaces.length <= stack.at(-1).indent) stack.pop();
    const parent = stack.at(-1).node;
    if (value === '') {
      parent[key] = {};
      stack.push({ indent: spaces.length, node: parent[key] });
    } else {
      parent[key] = value.replace(/^'(.*)'$/, '$1');
    }
  }
  return root;
}

test('action.yml: a JavaScript action on node20, its inputs those the entry reads, its outputs those it writes', () => {
  const action = readYaml(readFileSync(join(ACTION, 'action.yml'), 'utf8'));
  assert.deepEqual(action.runs, { using: 'node20', main: 'dist/index.mjs' });
  const inputs = action.inputs;
  assert.deepEqual(Object.keys(inputs).sort(), [
    'app-key',
    'app-secret',
    'base-url',
    'content',
    'event-id',
    'fail-on',
    'push-content',
    'receivers',
    'receivers-file',
    'sender',
  ]);
  for (const name of ['app-key', 'app-secret', 'sender', 'content']) assert.equal(inputs[name].required, 'true', name);
  assert.equal(inputs['base-url'].default, 'https://open.yunxinapi.com');
  assert.equal(inputs['fail-on'].default, 'any');
  assert.deepEqual(Object.keys(action.outputs), ['delivered', 'failed', 'unknown', 'report']);

  const source = readFileSync(join(ACTION, 'src', 'main.mjs'), 'utf8');
  const read = [...source.matchAll(/\binput\('([a-z-]+)'\)/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(read)].sort(), Object.keys(inputs).sort());
  const written = [...source.matchAll(/\bsetOutput\('([a-z-]+)'/g)].map((m) => m[1]);
  assert.deepEqual(written, Object.keys(action.outputs));
});

/** The `name<<DELIMITER` … `DELIMITER` blocks of a GITHUB_OUTPUT file. */
function readOutputs(text) {
  const outputs = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([\w-]+)<<(ghadelimiter_[0-9a-f-]+)$/.exec(lines[i]);
    if (!match) continue;
    const end = lines.indexOf(match[2], i + 1);
    assert.ok(end > i, `no closing delimiter for ${match[1]}`);
    outputs[match[1]] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return outputs;
}

/**
 * Runs the bundled entry with these inputs, as the runner would; resolves to its exit
 * code, stdout, stderr, outputs and summary. Fails if a secret is anywhere but in the
 * `::add-mask::` commands, which the runner takes out of the log.
 */
async function runAction(t, inputs, { secret = SECRET, files = {} } = {}) {
  const workspace = mkdtempSync(join(tmpdir(), 'yunxin-edge-action-'));
  t.after(() => rmSync(workspace, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(workspace, name), text);
  const outputFile = join(workspace, '.github_output');
  const summaryFile = join(workspace, '.github_step_summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const env = { PATH: process.env.PATH, GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;

  const { code, stdout, stderr } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY], { cwd: workspace, env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
  });
  const run = { code, stdout, stderr, outputs: readOutputs(readFileSync(outputFile, 'utf8')), summary: readFileSync(summaryFile, 'utf8') };
  const masks = stdout.split('\n').filter((line) => line.startsWith('::add-mask::'));
  if (secret) {
    assert.deepEqual(masks.slice(0, 2), [`::add-mask::${inputs['app-key']}`, `::add-mask::${secret}`], 'the credentials are masked first');
    const elsewhere = [stdout.split('\n').filter((line) => !masks.includes(line)).join('\n'), stderr, readFileSync(outputFile, 'utf8'), run.summary];
    for (const text of elsewhere) assert.ok(!text.includes(secret), `the secret leaked: ${JSON.stringify(run)}`);
  }
  return run;
}

async function emulator(t) {
  const emu = await startEmulator({ apps: { [KEY]: SECRET } });
  t.after(() => emu.close());
  return emu;
}

const baseInputs = (emu) => ({ 'app-key': KEY, 'app-secret': SECRET, sender: 'ci-bot', 'base-url': emu.url });

test('the entry delivers, writes its outputs and a job summary, and masks the secret', async (t) => {
  const emu = await emulator(t);
  const run = await runAction(t, {
    ...baseInputs(emu),
    receivers: 'alice, bob\ncarol\n\nghost-1',
    content: '{\n  "type": "deploy",\n  "build": 12345678901234567890123,\n  "note": "a \\" b"\n}\n',
    'push-content': 'Deploy finished',
    'fail-on': 'never',
  });
  assert.equal(run.code, 0, JSON.stringify(run));
  assert.equal(run.stderr, '');
  assert.deepEqual(
    { ...run.outputs, report: JSON.parse(run.outputs.report) },
    {
      delivered: '3',
      failed: '1',
      unknown: '0',
      report: {
        delivered: ['alice', 'bob', 'carol'],
        failed: [{ account_id: 'ghost-1', error_code: 102404, error_msg: 'account not exist', retryable: false }],
        unknown: [],
        not_attempted: [],
      },
    },
  );
  // JSON content compacted, every digit kept; the push text in push_config.
  const [delivery] = emu.deliveries();
  assert.equal(delivery.content, '{"type":"deploy","build":12345678901234567890123,"note":"a \\" b"}');
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1 });
  assert.equal(emu.requests().length, 1);

  assert.equal(
    run.summary,
    [
      '### Yunxin notification: 3 of 4 receivers delivered',
      '',
      '| delivered | failed | unknown | not sent |',
      '| ---: | ---: | ---: | ---: |',
      '| 3 | 1 | 0 | 0 |',
      '',
      '| receiver | outcome | code | reason |',
      '| --- | --- | --- | --- |',
      '| ghost&#45;1 | failed | 102404 | account not exist |',
      '',
    ].join('\n'),
  );
  // fail-on: never: a warning annotation, not a failure.
  assert.match(run.stdout, /^::warning title=yunxin-edge::3 of 4 receivers delivered, 1 failed, 0 unknown$/m);
});

test('fail-on: any (the default) fails on one undelivered receiver, all only when none was delivered', async (t) => {
  const emu = await emulator(t);
  const some = { ...baseInputs(emu), receivers: 'alice,ghost-1', content: 'x' };
  const none = { ...baseInputs(emu), receivers: 'ghost-1,ghost-2', content: 'x' };
  const cases = [
    [some, undefined, 1],
    [some, 'any', 1],
    [some, 'all', 0],
    [none, 'all', 1],
    [none, 'never', 0],
    [{ ...some, receivers: 'alice' }, 'any', 0],
  ];
  for (const [inputs, failOn, expected] of cases) {
    const run = await runAction(t, failOn === undefined ? inputs : { ...inputs, 'fail-on': failOn });
    assert.equal(run.code, expected, `${inputs.receivers}, fail-on ${failOn}: ${JSON.stringify(run)}`);
    if (expected === 1) assert.match(run.stdout, /^::error title=yunxin-edge::\d+ of 2 receivers delivered, .* \(fail-on: (any|all)\)$/m);
    // The outputs are written either way, for the steps that follow.
    assert.ok(JSON.parse(run.outputs.report).delivered);
  }
});

test('hostile receiver ids and messages render as text in the summary and stay one log line', async (t) => {
  const emu = await emulator(t);
  const hostile = ['ghost|x', 'ghost<img/src=x>', 'ghost`code`', 'ghost*em*_u_', 'ghost[l](j:a)', 'ghost&amp;#1'];
  const run = await runAction(t, { ...baseInputs(emu), receivers: hostile.join('\n'), content: 'x', 'fail-on': 'never' });
  assert.equal(run.code, 0, JSON.stringify(run));
  const rows = run.summary.split('\n').filter((line) => line.startsWith('| ghost'));
  assert.equal(rows.length, hostile.length);
  for (const [i, row] of rows.entries()) {
    // Four cells: no `|` of an id ends one early; no markup survives.
    assert.equal(row.split('|').length, 6, row);
    assert.doesNotMatch(row, /[<>`*_[\]()]|&(?!#\d+;)/, row);
    const decoded = row.split(' | ')[0].slice(2).replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
    assert.equal(decoded, hostile[i]);
  }
  // Each log line is a line of its own, starting with the tool's name or a command.
  for (const line of run.stdout.trimEnd().split('\n')) assert.match(line, /^(yunxin-edge: |::(add-mask|warning|error)[ :])/, line);
});

test('a wrong secret: an error annotation naming the inputs, exit 1 (a warning with fail-on: never)', async (t) => {
  const emu = await emulator(t);
  const wrong = 'Wrong-Secret-Sentinel-77';
  const inputs = { ...baseInputs(emu), 'app-secret': wrong, receivers: 'alice', content: 'x' };
  const run = await runAction(t, inputs, { secret: wrong });
  assert.equal(run.code, 1);
  assert.match(run.stdout, /^::error title=yunxin-edge::Yunxin refused the call: 414 checksum error; check the app-key and app-secret inputs$/m);
  const never = await runAction(t, { ...inputs, 'fail-on': 'never' }, { secret: wrong });
  assert.equal(never.code, 0);
  assert.match(never.stdout, /^::warning title=yunxin-edge::Yunxin refused the call: 414/m);
  assert.deepEqual(emu.deliveryCounts(), {});
});

test('receivers from a file and from the input together; event-id makes a re-run a repeat Yunxin drops', async (t) => {
  const emu = await emulator(t);
  const inputs = { ...baseInputs(emu), receivers: 'alice', 'receivers-file': 'on-call.txt', content: 'deploy 42 finished', 'event-id': 'run-42' };
  const files = { 'on-call.txt': 'bob\n\n  carol  \n' };
  for (let i = 0; i < 2; i++) {
    const run = await runAction(t, inputs, { files });
    assert.equal(run.code, 0, JSON.stringify(run));
    assert.equal(run.outputs.delivered, '3');
  }
  assert.equal(emu.requests()[1].replayed, true);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1 });
});

test('bad inputs fail the step naming the input (and the limit), before anything is sent', async (t) => {
  const emu = await emulator(t);
  const base = { ...baseInputs(emu), receivers: 'alice', content: 'x' };
  const cases = [
    [{ ...base, sender: '' }, 'input `sender` is required'],
    [{ ...base, content: '' }, 'input `content` is required'],
    [{ ...base, receivers: '' }, 'no receivers: give input `receivers`'],
    [{ ...base, 'receivers-file': 'missing.txt' }, 'input `receivers-file`: cannot read `missing.txt` (ENOENT)'],
    [{ ...base, 'fail-on': 'some' }, 'input `fail-on` must be one of any, all, never, got `some`'],
    [{ ...base, content: 'x'.repeat(4097) }, 'input `content`: `content` must be at most 4096 characters, got 4097'],
    [{ ...base, 'push-content': 'p'.repeat(501) }, 'input `push-content`: `push_config.push_content` must be at most 500 characters, got 501'],
    [{ ...base, receivers: `alice,${'a'.repeat(33)}` }, 'input `receivers`: `receiver_ids[1]` must be at most 32 characters'],
    [{ ...base, 'base-url': 'ftp://x' }, 'input `base-url`: '],
    [{ ...base, 'app-secret': '' }, 'input `app-secret` is required'],
  ];
  for (const [inputs, message] of cases) {
    const run = await runAction(t, inputs, { secret: inputs['app-secret'] ? SECRET : null });
    assert.equal(run.code, 1, JSON.stringify(run));
    const errors = run.stdout.split('\n').filter((line) => line.startsWith('::error'));
    assert.equal(errors.length, 1, run.stdout);
    assert.ok(errors[0].startsWith(`::error title=yunxin-edge::${message}`), `${errors[0]} should start with ${message}`);
    assert.equal(run.outputs.report, undefined);
    assert.equal(run.stderr, '');
  }
  assert.equal(emu.requests().length, 0);
});

test('the example workflow uses the Action with its inputs and reads its outputs', () => {
  const action = readYaml(readFileSync(join(ACTION, 'action.yml'), 'utf8'));
  const workflow = readFileSync(join(ROOT, 'examples', 'github-actions', 'notify-on-deploy.yml'), 'utf8');
  // The step that uses the Action, and the keys of its `with:` block.
  const step = /^( +)uses: yunxin-edge\/yunxin-edge\/action@v1\n\1with:\n((?:\1 +.*\n|\s*\n)+)/m.exec(workflow);
  assert.ok(step, 'a step uses yunxin-edge/yunxin-edge/action@v1 with inputs');
  const indent = `${step[1]}  `;
  const given = step[2]
    .split('\n')
    .filter((line) => line.startsWith(indent) && !line.startsWith(`${indent} `) && !line.trimStart().startsWith('#'))
    .map((line) => line.trim().split(':')[0]);
  assert.ok(given.length >= 8, given.join());
  for (const name of given) assert.ok(name in action.inputs, `${name} is not an input of action.yml`);
  for (const name of ['app-key', 'app-secret', 'sender', 'content']) assert.ok(given.includes(name), `the required input ${name} is given`);
  // Secrets from the repository's secrets, never written into the file.
  assert.match(workflow, /app-key: \$\{\{ secrets\.YUNXIN_APP_KEY \}\}/);
  assert.match(workflow, /app-secret: \$\{\{ secrets\.YUNXIN_APP_SECRET \}\}/);
  for (const [, output] of workflow.matchAll(/steps\.notify\.outputs\.([a-z-]+)/g)) assert.ok(output in action.outputs, output);
});

test('a secret holding % is masked as the runner reads commands back, and still signs', async (t) => {
  const secret = 'Per%cent-Secret%0A-91';
  const emu = await startEmulator({ apps: { [KEY]: secret } });
  t.after(() => emu.close());
  const run = await runAction(t, { ...baseInputs(emu), 'app-secret': secret, receivers: 'alice', content: 'x' }, { secret: null });
  assert.equal(run.code, 0, JSON.stringify(run));
  // `%` escaped as %25: the runner unescapes it and masks the secret itself.
  assert.equal(run.stdout.split('\n')[1], '::add-mask::Per%25cent-Secret%250A-91');
  assert.ok(!run.stdout.split('\n').slice(2).join('\n').includes(secret));
  assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
});
