// Tests of the emulator's call quota (Yunxin's calls per app per minute). The clock is
// injected: every test moves `clock` by hand, so nothing here waits or depends on how
// fast the machine is. Requests are signed with node:crypto directly, for the injected time.
// Run: node --test emulator/test/
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startEmulator, BATCH_PATH, QUOTA_WINDOW_MS } from '../index.mjs';
import { agent, request } from './http.mjs';

const APP_KEY = 'quota-app';
const APP_SECRET = 'quota-secret';
const OTHER_KEY = 'quota-other-app';
const OTHER_SECRET = 'quota-other-秘密';
const CLI = fileURLToPath(new URL('../cli.mjs', import.meta.url));
const YUNXIN_416 = '{"code":416,"msg":"frequency control"}';

// A clock at the start of a UNIX minute, so fixed windows line up with round numbers.
const T0 = 28_333_333 * QUOTA_WINDOW_MS; // 1_699_999_980_000 ms
const SEC = 1000;

const sha1hex = (s) => createHash('sha1').update(s, 'utf8').digest('hex');

function signed({ appKey = APP_KEY, secret = APP_SECRET, nowMs, traceId }) {
  const nonce = randomBytes(16).toString('hex');
  const curTime = String(Math.floor(nowMs / 1000));
  const h = { AppKey: appKey, Nonce: nonce, CurTime: curTime, CheckSum: sha1hex(`${secret}${nonce}${curTime}`) };
  if (traceId !== undefined) h['X-custom-traceid'] = traceId;
  return h;
}

const post = request;

const body = (receivers = ['alice', 'bob']) => ({ sender_id: 'sender1', receiver_ids: receivers, content: 'hi' });

/** An emulator on an injected clock; `at(ms)` sets it, `call(opts)` sends one signed call. */
async function withClock(t, options = {}) {
  let clock = T0;
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET, [OTHER_KEY]: OTHER_SECRET }, now: () => clock, ...options });
  t.after(() => emu.close());
  const at = (ms) => {
    clock = ms;
  };
  const call = ({ app = 'main', traceId, receivers, secret } = {}) => {
    const [appKey, appSecret] = app === 'other' ? [OTHER_KEY, OTHER_SECRET] : [APP_KEY, APP_SECRET];
    return post(emu.url, { body: body(receivers), headers: signed({ appKey, secret: secret ?? appSecret, nowMs: clock, traceId }) });
  };
  /** The code of each call made at `times` (ms offsets from T0). */
  const codesAt = async (times, opts) => {
    const codes = [];
    for (const dt of times) {
      clock = T0 + dt;
      codes.push((await call(opts)).json.code);
    }
    return codes;
  };
  return { emu, at, call, codesAt };
}

describe('call quota', { timeout: 30_000 }, () => {
  test('under the quota every call passes; stats count them', async (t) => {
    const { emu, codesAt } = await withClock(t, { quota: { perMinute: 5 } });
    assert.deepEqual(await codesAt([0, 0, 10 * SEC, 30 * SEC, 59 * SEC]), [200, 200, 200, 200, 200]);
    assert.equal(emu.deliveries().length, 10);
    assert.ok(emu.requests().every((r) => r.quota === false));
    const s = emu.quotaStats();
    assert.deepEqual(
      { enabled: s.enabled, perMinute: s.perMinute, blockSeconds: s.blockSeconds, window: s.window },
      { enabled: true, perMinute: 5, blockSeconds: 60, window: 'sliding' },
      'blockSeconds 60 and a sliding window by default',
    );
    assert.deepEqual(
      [s.calls, s.accepted, s.rejected, s.maxCallsPerWindow, s.maxAcceptedPerWindow, s.overQuota],
      [5, 5, 0, 5, 5, 0],
    );
  });

  test("the call over the quota gets Yunxin's 416, the same answer as the injected code416 fault", async (t) => {
    const { emu, call, at } = await withClock(t, { quota: { perMinute: 2 } });
    await call();
    await call();
    emu.injectFaults({ kind: 'code503', count: 1 });
    at(T0 + 5 * SEC);
    const over = await call({ traceId: 'over-1' });
    assert.equal(over.status, 200);
    assert.equal(over.text, YUNXIN_416);
    assert.match(over.headers['content-type'], /^application\/json/);
    assert.equal(emu.faults().length, 1, 'a refused call spends no injected fault');
    const rec = emu.requests().at(-1);
    assert.deepEqual(
      [rec.quota, rec.fault, rec.httpStatus, rec.code, rec.msg, rec.delivered, rec.checksumOk, rec.appKey],
      [true, null, 200, 416, 'frequency control', 0, true, APP_KEY],
    );
    assert.equal(emu.deliveries().length, 4, 'nothing delivered by the refused call');

    // The injected fault answers the same bytes: a client cannot tell them apart (but the record can).
    const plain = await withClock(t);
    plain.emu.injectFaults({ kind: 'code416', count: 1 });
    const injected = await plain.call();
    assert.deepEqual([injected.status, injected.text], [over.status, over.text]);
    assert.deepEqual([plain.emu.requests()[0].fault, plain.emu.requests()[0].quota], ['code416', false]);

    const s = emu.quotaStats();
    assert.deepEqual([s.calls, s.accepted, s.rejected, s.maxCallsPerWindow, s.maxAcceptedPerWindow, s.overQuota], [3, 2, 1, 3, 2, 1]);
  });

  test('after the call over, the app is blocked for blockSeconds, then accepted again', async (t) => {
    const { emu, codesAt } = await withClock(t, { quota: { perMinute: 2, blockSeconds: 90 } });
    // Over at 1 s: blocked until 91 s. Calls during the block are 416 (and do not extend it),
    // even after the window has emptied at 60 s.
    const times = [0, 0, 1 * SEC, 2 * SEC, 60 * SEC, 91 * SEC - 1, 91 * SEC, 91 * SEC, 91 * SEC];
    assert.deepEqual(await codesAt(times), [200, 200, 416, 416, 416, 416, 200, 200, 416]);
    assert.equal(emu.quotaStats().apps[APP_KEY].blockedUntil, T0 + 91 * SEC + 90 * SEC, 'the last 416 started a new block');
    assert.equal(emu.deliveries().length, 8);
    assert.deepEqual(emu.requests().map((r) => r.quota), times.map((_, i) => [2, 3, 4, 5, 8].includes(i)));
  });

  test('a short block: after it, the calls still in the last 60 s count', async (t) => {
    const { codesAt } = await withClock(t, { quota: { perMinute: 2, blockSeconds: 10 } });
    // Over at 30 s → blocked until 40 s. At 40 s the block is over but the calls of 0 s are
    // still in (−20 s, 40 s]: over again, blocked until 50 s. At 60 s the window (0 s, 60 s]
    // holds no accepted call: accepted.
    assert.deepEqual(await codesAt([0, 0, 30 * SEC, 40 * SEC, 50 * SEC - 1, 60 * SEC]), [200, 200, 416, 416, 416, 200]);
  });

  test('blockSeconds 0: only the calls over the quota are refused', async (t) => {
    const { codesAt } = await withClock(t, { quota: { perMinute: 1, blockSeconds: 0 } });
    assert.deepEqual(await codesAt([0, 1, 2, 60 * SEC - 1, 60 * SEC, 60 * SEC]), [200, 416, 416, 416, 200, 416]);
  });

  test('sliding window: any 60 s span, (now − 60 s, now], boundaries exact to the millisecond', async (t) => {
    const { emu, codesAt } = await withClock(t, { quota: { perMinute: 2, blockSeconds: 0 } });
    const codes = await codesAt([0, 30 * SEC, 60 * SEC - 1, 60 * SEC, 90 * SEC - 1, 90 * SEC, 120 * SEC - 1, 120 * SEC]);
    //  0 s and 30 s fill it; 59.999 s still sees 0 s; at 60 s, 0 s has left; 89.999 s sees 30 s and 60 s; …
    assert.deepEqual(codes, [200, 200, 416, 200, 416, 200, 416, 200]);
    const s = emu.quotaStats();
    assert.equal(s.maxAcceptedPerWindow, 2, 'never more than the quota accepted in any 60 s');
    assert.equal(s.maxCallsPerWindow, 4, 'counting the refused calls: 30 s, 59.999 s, 60 s, 89.999 s');
    assert.equal(s.overQuota, 2);
    assert.equal(s.rejected, 3);
  });

  test('sliding window: no burst at a minute boundary (the fixed window allows one)', async (t) => {
    // Two calls at the end of one clock minute and two at the start of the next: four in 10 s.
    const times = [50 * SEC, 59 * SEC, 60 * SEC, 61 * SEC];
    const sliding = await withClock(t, { quota: { perMinute: 2, blockSeconds: 0 } });
    assert.deepEqual(await sliding.codesAt(times), [200, 200, 416, 416]);
    const fixed = await withClock(t, { quota: { perMinute: 2, blockSeconds: 0, window: 'fixed' } });
    assert.deepEqual(await fixed.codesAt(times), [200, 200, 200, 200]);
    // Stats measure sliding 60 s windows whatever the enforcement: the fixed window let 4 through.
    const s = fixed.emu.quotaStats();
    assert.deepEqual([s.window, s.maxAcceptedPerWindow, s.overQuota, s.rejected], ['fixed', 4, 2, 0]);
    // …and the fixed window refuses the third call of one clock minute, at its last millisecond too.
    assert.deepEqual(await fixed.codesAt([62 * SEC, 120 * SEC - 1, 120 * SEC]), [416, 416, 200]);
  });

  test('each app key has its own quota and its own block', async (t) => {
    const { emu, call, at } = await withClock(t, { quota: { perMinute: 1 } });
    assert.equal((await call()).json.code, 200);
    assert.equal((await call()).json.code, 416);
    at(T0 + 10 * SEC);
    assert.equal((await call()).json.code, 416, 'main app blocked');
    assert.equal((await call({ app: 'other' })).json.code, 200, 'the other app is not');
    assert.equal((await call({ app: 'other' })).json.code, 416);
    const s = emu.quotaStats();
    assert.deepEqual(
      Object.fromEntries(Object.entries(s.apps).map(([k, a]) => [k, [a.calls, a.accepted, a.rejected, a.maxCallsPerWindow, a.overQuota]])),
      { [APP_KEY]: [3, 1, 2, 3, 2], [OTHER_KEY]: [2, 1, 1, 2, 1] },
    );
    assert.deepEqual([s.calls, s.accepted, s.rejected, s.maxCallsPerWindow, s.overQuota], [5, 2, 3, 3, 2], 'totals; maxima over apps');
  });

  test('a 416 is not cached under its trace id: the retry after the block is processed', async (t) => {
    const { emu, call, at } = await withClock(t, { quota: { perMinute: 1 } });
    assert.equal((await call({ traceId: 'done' })).json.code, 200);
    const refused = await call({ traceId: 'late', receivers: ['carol'] });
    assert.equal(refused.text, YUNXIN_416);
    // During the block even a retry of a delivered call is refused: the quota comes before the replay.
    at(T0 + 30 * SEC);
    const replayBlocked = await call({ traceId: 'done' });
    assert.deepEqual([replayBlocked.json.code, replayBlocked.headers['x-emulator-replayed']], [416, undefined]);

    at(T0 + 61 * SEC); // blocked until 60 s: the retry of 'late' is processed and delivered
    const retried = await call({ traceId: 'late', receivers: ['carol'] });
    assert.equal(retried.json.code, 200);
    assert.equal(retried.headers['x-emulator-replayed'], undefined);
    assert.deepEqual(retried.json.data, { success_list: ['carol'], failed_list: [] });
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1 });
    const last = emu.requests().at(-1);
    assert.deepEqual([last.replayed, last.quota, last.delivered], [false, false, 1]);

    // Now it is cached; its replay counts against the quota like any call.
    at(T0 + 200 * SEC);
    const replay = await call({ traceId: 'late', receivers: ['carol'] });
    assert.deepEqual([replay.json.code, replay.headers['x-emulator-replayed']], [200, '1']);
    assert.equal((await call({ traceId: 'late', receivers: ['carol'] })).json.code, 416, 'the replay used the quota');
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1 });
  });

  test('what counts: signed calls, faulted ones included; badly signed calls and other paths do not', async (t) => {
    const { emu, call } = await withClock(t, { quota: { perMinute: 2 } });
    for (let i = 0; i < 3; i++) assert.equal((await call({ secret: 'wrong' })).json.code, 414);
    const other = await post(emu.url, { path: '/im/v2/custom_notification/single', body: body(), headers: signed({ nowMs: T0 }) });
    assert.equal(other.status, 404);
    emu.injectFaults({ kind: 'http502', count: 1 });
    assert.equal((await call()).status, 502);
    assert.equal((await call()).json.code, 200);
    assert.equal((await call()).json.code, 416, 'the faulted call counted');
    assert.deepEqual([emu.quotaStats().calls, emu.quotaStats().rejected], [3, 1]);
  });

  test('off by default: no 416, but calls are still measured per 60 s', async (t) => {
    const { emu, codesAt } = await withClock(t);
    assert.deepEqual(await codesAt([0, 0, 0, 1, 59 * SEC, 120 * SEC]), [200, 200, 200, 200, 200, 200]);
    const s = emu.quotaStats();
    assert.deepEqual(
      [s.enabled, s.perMinute, s.blockSeconds, s.window, s.calls, s.rejected, s.maxCallsPerWindow, s.overQuota],
      [false, null, null, null, 6, 0, 5, null],
    );
    assert.ok(emu.requests().every((r) => r.quota === false));
  });

  test('setQuota, reset and the control endpoints', async (t) => {
    const { emu, call, at } = await withClock(t);
    assert.deepEqual(emu.setQuota({ perMinute: 1, blockSeconds: 300, window: 'fixed' }).perMinute, 1);
    assert.equal((await call()).json.code, 200);
    assert.equal((await call()).json.code, 416);
    emu.reset(); // forgets counts and blocks, keeps the quota
    assert.equal((await call()).json.code, 200);
    assert.deepEqual([emu.quotaStats().calls, emu.quotaStats().window], [1, 'fixed']);

    const ctl = (method, b) => post(emu.url, { path: '/_emulator/quota', method, body: b });
    const set = await ctl('POST', { perMinute: 3 });
    assert.deepEqual([set.status, set.json.perMinute, set.json.blockSeconds, set.json.window, set.json.calls], [200, 3, 60, 'sliding', 0]);
    at(T0 + SEC);
    for (let i = 0; i < 3; i++) assert.equal((await call()).json.code, 200);
    assert.equal((await call()).json.code, 416);
    const got = await ctl('GET');
    assert.deepEqual([got.json.calls, got.json.rejected, got.json.overQuota], [4, 1, 1]);

    const bad = await ctl('POST', { perMinute: 0 });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /quota\.perMinute must be a positive integer/);
    assert.equal((await ctl('GET')).json.perMinute, 3, 'a bad quota changes nothing');
    const off = await ctl('POST', null);
    assert.deepEqual([off.status, off.json.enabled], [200, false]);
    assert.equal((await call()).json.code, 200);
  });

  test('bad quota options throw a TypeError naming the field', async () => {
    const apps = { [APP_KEY]: APP_SECRET };
    const cases = [
      [{ perMinute: 0 }, /quota\.perMinute must be a positive integer/],
      [{ perMinute: 1.5 }, /quota\.perMinute/],
      [{ perMinute: '120' }, /quota\.perMinute/],
      [{}, /quota\.perMinute/],
      [{ perMinute: 1, blockSeconds: -1 }, /quota\.blockSeconds must be a non-negative integer/],
      [{ perMinute: 1, blockSeconds: 0.5 }, /quota\.blockSeconds/],
      [{ perMinute: 1, window: 'hourly' }, /quota\.window must be one of sliding, fixed/],
      [{ perMinute: 1, perSecond: 2 }, /quota: unknown field perSecond/],
      [120, /quota must be an object/],
    ];
    for (const [quota, message] of cases) {
      await assert.rejects(startEmulator({ apps, quota }), { name: 'TypeError', message }, JSON.stringify(quota));
    }
  });
});

describe('call quota: command-line flags', { timeout: 30_000 }, () => {
  const run = (...args) => spawnSync(process.execPath, [CLI, '--port', '0', '--app-key', APP_KEY, '--app-secret', APP_SECRET, ...args], { encoding: 'utf8', timeout: 10_000 });

  test('bad values exit 2 naming the flag', () => {
    const cases = [
      [['--quota-per-minute', '0'], /--quota-per-minute must be a positive integer, got "0"/],
      [['--quota-per-minute', 'abc'], /--quota-per-minute must be a positive integer/],
      [['--quota-per-minute', '-5'], /--quota-per-minute must be a positive integer/],
      [['--quota-per-minute=1e3'], /--quota-per-minute must be a positive integer/],
      [['--quota-per-minute', '99999999999999999999'], /--quota-per-minute must be a positive integer/],
      [['--quota-per-minute'], /--quota-per-minute needs a value/],
      [['--quota-per-minute', '10', '--quota-block-seconds', '1.5'], /--quota-block-seconds must be a non-negative integer/],
      [['--quota-per-minute', '10', '--quota-window', 'hourly'], /--quota-window must be sliding or fixed, got "hourly"/],
      [['--quota-block-seconds', '30'], /--quota-block-seconds needs --quota-per-minute/],
      [['--quota-window', 'fixed'], /--quota-window needs --quota-per-minute/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', 'nothing on stdout: no listening line');
      assert.ok(!r.stderr.includes(APP_SECRET));
    }
  });

  test('the flags configure the quota of the emulator process', async (t) => {
    const child = spawn(process.execPath, [CLI, '--port', '0', '--app-key', APP_KEY, '--quota-per-minute', '1', '--quota-block-seconds=7', '--quota-window', 'fixed'], {
      env: { ...process.env, YUNXIN_APP_SECRET: APP_SECRET },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    t.after(() => child.kill('SIGTERM'));
    const url = await new Promise((resolve, reject) => {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (line) => {
        const m = /listening on (http:\S+)/.exec(line);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
    });
    const stats = (await post(url, { path: '/_emulator/quota', method: 'GET' })).json;
    assert.deepEqual([stats.enabled, stats.perMinute, stats.blockSeconds, stats.window], [true, 1, 7, 'fixed']);
    // The process runs on the real clock; one call, then a second long before the block could end.
    const first = await post(url, { body: body(), headers: signed({ nowMs: Date.now() }) });
    assert.equal(first.json.code, 200);
    const second = await post(url, { body: body(), headers: signed({ nowMs: Date.now() }) });
    assert.ok([200, 416].includes(second.json.code));
    if (second.json.code === 200) {
      // The two calls straddled a clock minute (fixed window): the third is in the second's minute.
      assert.equal((await post(url, { body: body(), headers: signed({ nowMs: Date.now() }) })).json.code, 416);
    }
    const after = (await post(url, { path: '/_emulator/quota', method: 'GET' })).json;
    assert.equal(after.rejected, 1);
    const requests = (await post(url, { path: '/_emulator/requests', method: 'GET' })).json;
    assert.deepEqual(requests.map((r) => r.quota).filter(Boolean), [true]);
    agent.destroy();
  });
});
