// `npx yunxin-edge`: the package's command-line tool (js/npm/cli.mjs, the package's
// `bin`) run from the built package as a child process, the way a user runs it, against
// the project's Yunxin emulator on 127.0.0.1. Its commands, flags, output and exit codes
// are the Rust tool's (cli/tests/yunxin.rs has the same cases).
//
// Every run gets a clean environment with only the variables a test gives it, and no run
// may print the app secret, on stdout or stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startEmulator } from '../../emulator/index.mjs';
import { PKG_DIR, linkPackage } from '../test-support/package.mjs';

linkPackage();
const { signYunxinCallback } = await import('yunxin-edge');

const CLI = join(PKG_DIR, 'cli.mjs');
const KEY = 'test-app-key';
// Distinctive, so that a leak in any output is found by a plain search.
const SECRET = 'S3cret-Sentinel-7f2c';
const CREDENTIALS = { YUNXIN_APP_KEY: KEY, YUNXIN_APP_SECRET: SECRET };

/**
 * Runs the tool with `args`, only the variables `env` (and PATH), and `stdin`; resolves
 * to `{ code, stdout, stderr }`. Fails if any secret of `env` is in the output.
 */
function run(args, { env = CREDENTIALS, stdin = '' } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const out = { code, stdout, stderr };
      for (const secret of [env.YUNXIN_APP_SECRET, SECRET].filter(Boolean)) {
        for (const [name, text] of Object.entries({ stdout, stderr })) {
          if (text.includes(secret)) reject(new Error(`the secret is in ${name}: ${JSON.stringify(out)}`));
        }
      }
      resolve(out);
    });
    child.stdin.end(stdin);
  });
}

const json = (out) => {
  try {
    return JSON.parse(out.stdout);
  } catch (error) {
    throw new Error(`stdout is not JSON (${error.message}): ${JSON.stringify(out)}`);
  }
};

async function emulator(t) {
  const emu = await startEmulator({ apps: { [KEY]: SECRET } });
  t.after(() => emu.close());
  return emu;
}

// `send` to `to` through `emu`, with `extra` flags.
function send(emu, to, extra = [], options) {
  return run(['send', '--to', to, '--content', '{"deploy":"ok"}', '--from', 'ops-bot', '--base-url', emu.url, ...extra], options);
}

function scratch(t) {
  const dir = mkdtempSync(join(tmpdir(), 'yunxin-edge-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// --- send -------------------------------------------------------------------

test('send delivers to every receiver: the report as JSON, exit 0, no progress for one call', async (t) => {
  const emu = await emulator(t);
  const out = await send(emu, 'alice,bob', ['--json']);
  assert.equal(out.code, 0, JSON.stringify(out));
  // The Rust tool's JSON, to the byte: the core's report and the number of calls.
  assert.equal(out.stdout, `${JSON.stringify({ delivered: ['alice', 'bob'], failed: [], unknown: [], not_attempted: [], calls: 1 }, null, 2)}\n`);
  assert.equal(out.stderr, '');
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
  assert.equal(emu.deliveries()[0].content, '{"deploy":"ok"}');
});

test('an unknown receiver is reported failed with its code: exit 3', async (t) => {
  const emu = await emulator(t);
  const out = await send(emu, 'alice,ghost1,bob');
  assert.equal(out.code, 3, JSON.stringify(out));
  assert.equal(out.stdout, 'delivered 2 of 3 receivers in 1 call\nfailed ghost1: 102404 account not exist\n');
  assert.equal(out.stderr, 'yunxin-edge: 1 of 3 receivers not delivered\n');

  // --json before the command works as well as after it.
  const asJson = await run(['--json', 'send', '--to', 'alice,ghost1', '--content', 'x', '--from', 'ops-bot', '--base-url', emu.url]);
  assert.equal(asJson.code, 3);
  assert.deepEqual(json(asJson).failed, [{ account_id: 'ghost1', error_code: 102404, error_msg: 'account not exist', retryable: false }]);
});

test('over 500 receivers from stdin: calls of at most 500, a line of progress per call, --quiet drops them', async (t) => {
  const emu = await emulator(t);
  // 1,201 ids on stdin (one repeated in another case), and one more by --to.
  const stdin = [...Array.from({ length: 1201 }, (_, i) => `user${i}`), 'USER7'].join('\n') + '\n\n';
  const env = { ...CREDENTIALS, YUNXIN_SENDER_ID: 'ops-bot' };
  const out = await run(['send', '--to-file', '-', '--to', 'extra', '--content', 'hello', '--base-url', emu.url, '--json'], { env, stdin });
  assert.equal(out.code, 0, JSON.stringify(out).slice(0, 2000));
  const report = json(out);
  assert.equal(report.calls, 3);
  assert.equal(report.delivered.length, 1202);
  assert.deepEqual(report.not_attempted, [{ account_id: 'USER7', reason: 'duplicate of user7' }]);
  assert.deepEqual(
    emu.requests().map((r) => r.receiverCount),
    [500, 500, 202],
  );
  assert.ok(Object.values(emu.deliveryCounts()).every((n) => n === 1));
  assert.equal(Object.keys(emu.deliveryCounts()).length, 1202);
  assert.equal(
    out.stderr,
    'yunxin-edge: call 1/3 (500 receivers): delivered\n' +
      'yunxin-edge: call 2/3 (500 receivers): delivered\n' +
      'yunxin-edge: call 3/3 (202 receivers): delivered\n',
  );

  const quiet = await run(['send', '--to-file', '-', '--content', 'hello', '--from', 'ops-bot', '--base-url', emu.url, '--quiet'], { stdin });
  assert.equal(quiet.code, 0);
  assert.equal(quiet.stderr, '');
  assert.equal(quiet.stdout, 'delivered 1201 of 1202 receivers in 3 calls\nnot sent USER7: duplicate of user7\n');
});

test('a wrong secret exits 4, naming the variables, and prints neither secret', async (t) => {
  const emu = await emulator(t);
  const wrong = 'Wrong-Sentinel-91aa';
  const env = { YUNXIN_APP_KEY: KEY, YUNXIN_APP_SECRET: wrong };
  const out = await send(emu, 'alice', [], { env });
  assert.equal(out.code, 4, JSON.stringify(out));
  assert.equal(out.stderr, 'yunxin-edge: Yunxin refused the call: 414 checksum error; check YUNXIN_APP_KEY and YUNXIN_APP_SECRET\n');
  assert.deepEqual(emu.deliveryCounts(), {});

  const asJson = await send(emu, 'alice', ['--json'], { env });
  assert.equal(asJson.code, 4);
  assert.equal(json(asJson).failed[0].error_code, 414);
});

test('a failed call is sent again with the same trace id, and says so on stderr', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'http502', count: 1 });
  const out = await send(emu, 'alice,bob', ['--retry-delay-ms', '0']);
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.equal(out.stdout, 'delivered 2 of 2 receivers in 1 call\n');
  assert.equal(
    out.stderr,
    'yunxin-edge: call 1/1 (2 receivers): HTTP 502 from upstream; again in 0 ms\n' + 'yunxin-edge: call 1/1 (2 receivers), attempt 2: delivered\n',
  );
  const [first, second] = emu.requests();
  assert.equal(emu.requests().length, 2);
  assert.equal(first.httpStatus, 502);
  assert.equal(second.traceId, first.traceId);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
});

test('an answer lost after delivery does not notify twice', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'drop-after', count: 1 });
  const out = await send(emu, 'alice,bob', ['--retry-delay-ms', '0', '--json']);
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.deepEqual(json(out).delivered, ['alice', 'bob']);
  assert.match(out.stderr, /^yunxin-edge: call 1\/1 \(2 receivers\): answer lost: /);
  const [lost, replayed] = emu.requests();
  assert.equal(replayed.traceId, lost.traceId);
  assert.equal(replayed.replayed, true);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
});

test('a receiver failing retryably is sent again alone, under a new trace id', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['bob'], count: 1 });
  const out = await send(emu, 'alice,bob,carol', ['--retry-delay-ms', '0']);
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.equal(
    out.stderr,
    'yunxin-edge: call 1/1 (3 receivers): 1 of 3 receivers failed, e.g. bob: 102503 server busy; again in 0 ms\n' +
      'yunxin-edge: call 1/1 (1 receiver), attempt 2: delivered\n',
  );
  const [first, followUp] = emu.requests();
  assert.equal(followUp.receiverCount, 1);
  assert.notEqual(followUp.traceId, first.traceId);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1 });
});

test('retries that run out leave receivers failed and retryable: exit 3', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'code503' });
  const out = await send(emu, 'alice', ['--retries', '1', '--retry-delay-ms', '0', '--json']);
  assert.equal(out.code, 3, JSON.stringify(out));
  const [failed] = json(out).failed;
  assert.deepEqual([failed.error_code, failed.retryable], [503, true]);
  assert.match(out.stderr, /attempt 2: refused: 503 server busy; giving up\n/);
  assert.equal(emu.requests().length, 2);
});

test('the same --event-id sent again is a repeat Yunxin drops', async (t) => {
  const emu = await emulator(t);
  for (let i = 0; i < 2; i++) assert.equal((await send(emu, 'alice,bob', ['--event-id', 'deploy-42'])).code, 0);
  assert.equal(emu.requests()[1].replayed, true);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
});

test('a whole notification from a file gets the receivers of --to; the file is the core\'s to parse', async (t) => {
  const emu = await emulator(t);
  const dir = scratch(t);
  const path = join(dir, 'notification.json');
  writeFileSync(
    path,
    JSON.stringify({ sender_id: 'ops-bot', receiver_ids: ['alice'], content: { deploy: 'ok' }, push_config: { push_content: '部署完成 ✅' } }),
  );
  const out = await run(['send', '--notification', path, '--to', 'bob', '--base-url', emu.url, '--json']);
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.deepEqual(json(out).delivered, ['alice', 'bob']);
  assert.equal(emu.deliveries()[0].content, '{"deploy":"ok"}');

  // Without --to the bytes go to the core as they are: every digit of a number kept.
  writeFileSync(path, '{"sender_id":"ops-bot","receiver_ids":["carol"],"content":{"n":123456789012345678901234567890}}');
  assert.equal((await run(['send', '--notification', path, '--base-url', emu.url])).code, 0);
  assert.equal(emu.deliveries().at(-1).content, '{"n":123456789012345678901234567890}');

  // Broken JSON: the core's words, with line and column (with or without --to).
  writeFileSync(path, '{\n  "sender_id": "ops-bot",\n  "receiver_ids": ["a",]\n}');
  for (const extra of [[], ['--to', 'bob']]) {
    const broken = await run(['send', '--notification', path, '--base-url', emu.url, '--json', ...extra]);
    assert.equal(broken.code, 1, JSON.stringify(broken));
    assert.equal(json(broken).error.code, 'malformed_json');
    assert.match(json(broken).error.message, /line 3 column/);
  }

  // --content and --notification are one or the other.
  const both = await run(['send', '--notification', path, '--content', 'x']);
  assert.equal(both.code, 2, JSON.stringify(both));
  assert.match(both.stderr, /--content/);
  assert.equal(emu.requests().length, 2);
});

test('an invalid notification exits 1 naming the field and the limit, and sends nothing', async (t) => {
  const emu = await emulator(t);
  const out = await run(['send', '--to', 'alice', '--content', 'x'.repeat(4097), '--from', 'ops-bot', '--base-url', emu.url, '--json']);
  assert.equal(out.code, 1, JSON.stringify(out));
  assert.equal(
    out.stdout,
    `${JSON.stringify(
      { error: { code: 'too_long', message: '`content` must be at most 4096 characters, got 4097', field: 'content', limit: 4096 } },
      null,
      2,
    )}\n`,
  );

  const text = await run(['send', '--to', 'alice', '--content', 'x'.repeat(4097), '--from', 'ops-bot', '--base-url', emu.url]);
  assert.equal(text.code, 1);
  assert.equal(text.stdout, '');
  assert.equal(text.stderr, 'yunxin-edge: `content` must be at most 4096 characters, got 4097\n');
  assert.equal(emu.requests().length, 0);
});

test('bad arguments are usage errors (exit 2) on one line naming the flag or variable, never a stack trace', async (t) => {
  const dir = scratch(t);
  const notUtf8 = join(dir, 'ids.txt');
  writeFileSync(notUtf8, Buffer.from([0x61, 0x0a, 0xff, 0xfe, 0x0a]));
  const base = ['send', '--to', 'a', '--content', 'x', '--from', 'b'];
  const cases = [
    [['send', '--to', 'alice'], CREDENTIALS, '--content'],
    [[...base, '--retries', 'many'], CREDENTIALS, '--retries'],
    [[...base, '--timeout-ms', '3000000000'], CREDENTIALS, '--timeout-ms <MS>'],
    [[...base, '--base-url', 'ftp://x'], CREDENTIALS, '--base-url'],
    [[...base, '--max-wait-ms', '-1'], CREDENTIALS, '--max-wait-ms'],
    [['send', '--content', 'x', '--from', 'b'], CREDENTIALS, '--to'],
    [['send', '--to', 'a', '--content', 'x'], CREDENTIALS, '--from'],
    [[...base, '--frm', 'c'], CREDENTIALS, "'--frm'"],
    [[...base, '--to-file', 'missing.txt'], CREDENTIALS, '--to-file'],
    [[...base, '--to-file', notUtf8], CREDENTIALS, 'line 2 is not UTF-8'],
    [[...base, '--content', 'y'], CREDENTIALS, 'cannot be used multiple times'],
    [[...base, 'extra'], CREDENTIALS, "'extra'"],
    [base, { YUNXIN_APP_KEY: KEY }, 'YUNXIN_APP_SECRET'],
    [base, { ...CREDENTIALS, YUNXIN_BASE_URL: 'not a url' }, 'YUNXIN_BASE_URL'],
    [['sign'], { YUNXIN_APP_SECRET: SECRET }, 'YUNXIN_APP_KEY'],
    [['sign', '--curl'], CREDENTIALS, '--body'],
    [['sign', '--nonce', 'n'.repeat(129)], CREDENTIALS, '--nonce'],
    [['verify-callback', '--header', 'AppKey'], CREDENTIALS, 'AppKey'],
    [['verify-callback', '--header', 'AppKey: K'], CREDENTIALS, '--body'],
    [['sned'], CREDENTIALS, "'send'"],
    [['toString'], CREDENTIALS, "'toString'"],
    [['help', 'constructor'], CREDENTIALS, "'constructor'"],
    [[], CREDENTIALS, 'send, sign, verify-callback'],
  ];
  for (const [args, env, named] of cases) {
    const out = await run(args, { env });
    const what = `${JSON.stringify(args).slice(0, 200)}: ${JSON.stringify(out)}`;
    assert.equal(out.code, 2, what);
    assert.equal(out.stdout, '', what);
    assert.ok(out.stderr.startsWith('yunxin-edge: ') && out.stderr.includes(named), `should name ${named}: ${what}`);
    assert.equal(out.stderr.split('\n').length, 2, `one line: ${what}`);
    assert.doesNotMatch(out.stderr, /\n\s+at /, 'no stack trace');
  }
  // With --json, the error is JSON on stdout.
  const out = await run(['send', '--to', 'a', '--json']);
  assert.equal(out.code, 2);
  assert.equal(json(out).error.code, 'usage');
  const missing = await run(['send', '--to', 'a', '--content', 'x', '--from', 'b', '--json'], { env: { YUNXIN_APP_SECRET: SECRET } });
  assert.deepEqual(json(missing).error, {
    code: 'missing_credentials',
    message: 'YUNXIN_APP_KEY is not set: set it to the app key from the Yunxin console (credentials are read from the environment only)',
    field: 'YUNXIN_APP_KEY',
  });
});

test("the Rust tool's render and check are not here, and say where they are", async () => {
  for (const command of ['render', 'check']) {
    const out = await run([command, '--routes', 'routes.json']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /is a command of the Rust tool only: .*cargo install --path cli/);
  }
});

test('--help documents the flags, the variables and the exit codes; --version', async () => {
  const out = await run(['send', '--help']);
  assert.equal(out.code, 0, JSON.stringify(out));
  for (const text of [
    '--to <IDS>',
    '--to-file <FILE>',
    '--content <TEXT>',
    '--from <ACCOUNT>',
    '--notification <FILE>',
    '--base-url <URL>',
    '--event-id <ID>',
    '--max-receivers <N>',
    '--retries <N>',
    '--retry-delay-ms <MS>',
    '--max-wait-ms <MS>',
    '--timeout-ms <MS>',
    '-q, --quiet',
    '--json',
    'YUNXIN_APP_KEY and YUNXIN_APP_SECRET',
    'YUNXIN_SENDER_ID',
    'YUNXIN_BASE_URL',
    '3 some were not',
    '4 Yunxin refused',
  ]) {
    assert.ok(out.stdout.includes(text), `no ${text} in ${out.stdout}`);
  }
  assert.equal((await run(['help', 'send'])).stdout, out.stdout);
  assert.equal((await run(['send', '-h'])).stdout, out.stdout);

  const top = await run(['--help']);
  assert.equal(top.code, 0);
  for (const text of ['send', 'sign', 'verify-callback', '--json', '--version', 'render', 'cargo install --path cli']) {
    assert.ok(top.stdout.includes(text), `no ${text} in ${top.stdout}`);
  }
  for (const [command, flags] of [
    ['sign', ['--body <FILE>', '--curl', '--nonce <NONCE>', '--cur-time <UNIX_SECS>']],
    ['verify-callback', ['--body <FILE>', '--header <NAME:VALUE>', '--headers-file <FILE>', '--tolerance-secs <SECS>', '--now-ms <UNIX_MS>']],
  ]) {
    const help = await run([command, '--help']);
    assert.equal(help.code, 0);
    for (const flag of flags) assert.ok(help.stdout.includes(flag), `no ${flag} in ${command} --help`);
  }
  const pkg = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8'));
  assert.deepEqual(await run(['--version']), { code: 0, stdout: `yunxin-edge ${pkg.version}\n`, stderr: '' });
  // As npm normalises it (`./cli.mjs` draws a warning on publish).
  assert.deepEqual(pkg.bin, { 'yunxin-edge': 'cli.mjs' });
});

// --- sign -------------------------------------------------------------------

test('sign gives the reference checksum; --json the headers as an object', async () => {
  const env = { YUNXIN_APP_KEY: 'K', YUNXIN_APP_SECRET: 'secret' };
  const out = await run(['sign', '--nonce', 'abc', '--cur-time', '1443592222'], { env });
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.equal(out.stdout, 'AppKey: K\nNonce: abc\nCurTime: 1443592222\nCheckSum: 6461e65304e590d2268093aa1d290482274995b9\n');
  const headers = json(await run(['sign', '--json'], { env }));
  assert.equal(headers.AppKey, 'K');
  assert.match(headers.Nonce, /^[0-9a-f]{32}$/);
  assert.ok(Math.abs(Number(headers.CurTime) - Date.now() / 1000) < 600);
});

test('sign --body: the calls send would make, signed, which the emulator accepts', async (t) => {
  const emu = await emulator(t);
  const dir = scratch(t);
  const path = join(dir, 'notification.json');
  const receivers = Array.from({ length: 600 }, (_, i) => `u${i}`);
  writeFileSync(path, JSON.stringify({ sender_id: 'ops-bot', receiver_ids: receivers, content: 'hi' }));

  const out = await run(['sign', '--body', path, '--base-url', emu.url, '--json']);
  assert.equal(out.code, 0, JSON.stringify(out).slice(0, 2000));
  const { requests } = json(out);
  assert.deepEqual(
    requests.map((r) => r.receivers),
    [500, 100],
  );
  for (const request of requests) {
    assert.deepEqual(Object.keys(request), ['method', 'url', 'headers', 'body', 'trace_id', 'receivers']);
    assert.equal(request.headers['X-custom-traceid'], request.trace_id);
    const answer = await (await fetch(request.url, { method: request.method, headers: request.headers, body: request.body })).json();
    assert.equal(answer.code, 200, JSON.stringify(answer));
  }
  assert.equal(Object.keys(emu.deliveryCounts()).length, 600);

  // curl commands, one Nonce for every call when given, trace ids from --event-id.
  const curl = await run(['sign', '--body', path, '--base-url', emu.url, '--curl', '--nonce', 'abc', '--event-id', 'deploy-7']);
  assert.equal(curl.code, 0, JSON.stringify(curl).slice(0, 2000));
  const commands = curl.stdout.trimEnd().split('\n\n');
  assert.equal(commands.length, 2);
  assert.ok(commands[0].startsWith(`curl -sS -X POST '${emu.url}/im/v2/custom_notification/batch' \\\n  -H 'AppKey: ${KEY}' \\\n  -H 'Nonce: abc' \\\n`), commands[0]);
  assert.match(commands[1], /--data-raw '\{"sender_id":"ops-bot","receiver_ids":\["u500",/);
  const again = await run(['sign', '--body', path, '--base-url', emu.url, '--event-id', 'deploy-7', '--json']);
  const traceIds = json(again).requests.map((r) => r.trace_id);
  assert.deepEqual(
    commands.map((command) => /X-custom-traceid: ([^']+)'/.exec(command)[1]),
    traceIds,
  );

  // HTTP text without --curl; an invalid notification is exit 1 before the credentials.
  const text = await run(['sign', '--body', path, '--base-url', emu.url]);
  assert.match(text.stdout, new RegExp(`^POST ${emu.url}/im/v2/custom_notification/batch\nAppKey: ${KEY}\n`));
  writeFileSync(path, JSON.stringify({ sender_id: 'ops-bot', receiver_ids: ['a'], content: 'x'.repeat(5000) }));
  const invalid = await run(['sign', '--body', path, '--json'], { env: {} });
  assert.equal(invalid.code, 1);
  assert.deepEqual([json(invalid).error.code, json(invalid).error.field, json(invalid).error.limit], ['too_long', 'content', 4096]);
});

// --- verify-callback -----------------------------------------------------------

test('verify-callback: a genuine callback is ok, each failed check is exit 1 with its code and header', async (t) => {
  const dir = scratch(t);
  const body = join(dir, 'body.json');
  const raw = JSON.stringify({ eventType: '1', fromAccount: 'alice', body: '你好' });
  writeFileSync(body, raw);
  const now = Date.now();
  const signed = signYunxinCallback({ appKey: KEY, appSecret: SECRET }, raw, { now });
  const headerFlags = (headers) => Object.entries(headers).flatMap(([name, value]) => ['--header', `${name}: ${value}`]);
  // Signed over another CurTime: the CheckSum (checked before CurTime) still matches.
  const withCurTime = (headers, curTime) => ({
    ...headers,
    CurTime: curTime,
    CheckSum: createHash('sha1').update(SECRET + headers.MD5 + curTime).digest('hex'),
  });

  const ok = await run(['verify-callback', '--body', body, ...headerFlags(signed)]);
  assert.deepEqual(ok, { code: 0, stdout: `ok: a callback for app ${KEY}\n`, stderr: '' });
  const okJson = await run(['verify-callback', '--body', body, ...headerFlags(signed), '--json']);
  assert.deepEqual(json(okJson), { ok: true, app_key: KEY, cur_time: signed.CurTime });

  // The same headers from a file, as a request head shows them.
  const head = join(dir, 'head.txt');
  writeFileSync(head, `POST /yunxin/callback HTTP/1.1\r\n${Object.entries(signed).map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\nignored: after the blank line`);
  assert.equal((await run(['verify-callback', '--body', body, '--headers-file', head])).code, 0);

  const edited = join(dir, 'edited.json');
  writeFileSync(edited, raw.replace('alice', 'mallory'));
  const cases = [
    [['--body', edited, ...headerFlags(signed)], 'md5_mismatch', 'MD5', 'callback rejected: MD5 does not match the body'],
    [['--body', body, ...headerFlags({ ...signed, CheckSum: '0'.repeat(40) })], 'checksum_mismatch', 'CheckSum', 'callback rejected: CheckSum does not match'],
    [['--body', body, ...headerFlags({ ...signed, AppKey: 'other' })], 'app_key_mismatch', 'AppKey', 'callback rejected: AppKey does not match this app'],
    [['--body', body, ...headerFlags({ AppKey: KEY, CurTime: signed.CurTime, MD5: signed.MD5 })], 'missing_header', 'CheckSum', 'callback rejected: the CheckSum header is missing'],
    [['--body', body, ...headerFlags(signed), '--now-ms', String(now + 301_000)], 'cur_time_skew', 'CurTime', /^callback rejected: CurTime is 301000 ms away/],
    [['--body', body, ...headerFlags(withCurTime(signed, 'soon'))], 'invalid_cur_time', 'CurTime', /^callback rejected: CurTime is not a whole number/],
  ];
  for (const [args, code, field, message] of cases) {
    const out = await run(['verify-callback', ...args, '--json']);
    assert.equal(out.code, 1, JSON.stringify(out));
    const { error } = json(out);
    assert.deepEqual([error.code, error.field], [code, field]);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    const text = await run(['verify-callback', ...args]);
    assert.equal(text.code, 1);
    assert.equal(text.stderr, `yunxin-edge: ${error.message}\n`);
  }
  // A wider tolerance accepts the late one.
  const late = await run(['verify-callback', '--body', body, ...headerFlags(signed), '--now-ms', String(now + 301_000), '--tolerance-secs', '400']);
  assert.equal(late.code, 0, JSON.stringify(late));

  // Header names are data, whatever they are called.
  const odd = await run(['verify-callback', '--body', body, ...headerFlags(signed), '--header', '__proto__: x', '--header', 'constructor: y', '--json']);
  assert.equal(odd.code, 0, JSON.stringify(odd));

  // A genuine body need not be JSON.
  const plain = join(dir, 'plain.txt');
  writeFileSync(plain, 'not json');
  const plainOut = await run(['verify-callback', '--body', plain, ...headerFlags(signYunxinCallback({ appKey: KEY, appSecret: SECRET }, 'not json'))]);
  assert.equal(plainOut.code, 0, JSON.stringify(plainOut));
});
