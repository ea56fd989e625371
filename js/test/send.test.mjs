// send() from the built package against the project's Yunxin emulator (in-process, on
// 127.0.0.1, ephemeral port): the whole job over real HTTP, with partial failures,
// injected faults, retries with the same trace id, timeouts and bounded concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startEmulator } from '../../emulator/index.mjs';
import { linkPackage } from '../test-support/package.mjs';

linkPackage();
const { send, buildBatchRequests, YunxinError } = await import('yunxin-edge');

const APP_KEY = 'js-package-app';
const APP_SECRET = 'js-package-秘密-secret';
const credentials = { appKey: APP_KEY, appSecret: APP_SECRET };
const receivers = (n, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const notification = (receiver_ids, content = 'deploy finished') => ({ sender_id: 'ops-bot', receiver_ids, content });

async function emulator(t, options = {}) {
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, ...options });
  t.after(() => emu.close());
  return emu;
}

// Every receiver of the input exactly once across the three lists.
function assertEachOnce(report, expected) {
  const named = [
    ...report.delivered,
    ...report.failed.map((f) => f.account_id),
    ...report.not_attempted.map((n) => n.account_id),
  ];
  assert.deepEqual([...named].sort(), [...expected].sort());
}

function assertNoSecret(value) {
  assert.ok(!JSON.stringify(value).includes(APP_SECRET), 'the app secret leaked');
}

test('1,201 receivers, some unknown: three calls, a per-receiver report, each delivered once', async (t) => {
  const emu = await emulator(t);
  const ids = [...receivers(1195), ...receivers(6, 'ghost')];
  const report = await send(credentials, notification(ids, { deploy: 'ok' }), { baseUrl: emu.url });

  assert.equal(emu.requests().length, 3);
  assert.equal(report.delivered.length, 1195);
  assert.deepEqual(
    report.failed,
    receivers(6, 'ghost').map((id) => ({ account_id: id, error_code: 102404, error_msg: 'account not exist', retryable: false })),
  );
  assert.deepEqual(report.not_attempted, []);
  assert.equal(report.retry_after_secs, undefined);
  assertEachOnce(report, ids);

  const counts = emu.deliveryCounts();
  assert.equal(Object.keys(counts).length, 1195);
  assert.ok(Object.values(counts).every((n) => n === 1));
  assert.equal(emu.deliveries()[0].content, '{"deploy":"ok"}');
  assertNoSecret(report);
});

test('a 502 is retried with the same trace id and a fresh signature, and delivered exactly once', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'http502', count: 1 });
  const sent = [];
  const recordingFetch = (url, init) => {
    sent.push(init.headers);
    return fetch(url, init);
  };
  const report = await send(credentials, notification(['alice', 'bob']), { baseUrl: emu.url, retryDelayMs: 10, fetch: recordingFetch });

  assert.deepEqual(report, { delivered: ['alice', 'bob'], failed: [], not_attempted: [] });
  const [first, retry] = emu.requests();
  assert.equal(first.httpStatus, 502);
  assert.equal(retry.httpStatus, 200);
  assert.ok(first.traceId, 'the call carries a trace id');
  assert.equal(retry.traceId, first.traceId);
  assert.equal(retry.checksumOk, true);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
  assert.equal(sent.length, 2);
  assert.equal(sent[1]['X-custom-traceid'], sent[0]['X-custom-traceid']);
  assert.notEqual(sent[1].Nonce, sent[0].Nonce);
  assert.notEqual(sent[1].CheckSum, sent[0].CheckSum);
});

test('an answer lost after delivery is retried, and Yunxin de-duplicates it by trace id', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'drop-after', count: 1 });
  const report = await send(credentials, notification(['alice']), { baseUrl: emu.url, retryDelayMs: 10 });

  assert.deepEqual(report.delivered, ['alice']);
  const [lost, replayed] = emu.requests();
  assert.equal(replayed.traceId, lost.traceId);
  assert.equal(replayed.replayed, true);
  assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
});

test('a timed-out call is retried; the late original is not delivered twice', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'slow', count: 1, delayMs: 400 });
  const report = await send(credentials, notification(['alice']), { baseUrl: emu.url, timeoutMs: 100, retryDelayMs: 10 });
  assert.deepEqual(report.delivered, ['alice']);
  await new Promise((resolve) => setTimeout(resolve, 500)); // let the slow original finish
  assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
  assert.equal(new Set(emu.requests().map((r) => r.traceId)).size, 1);
});

test('retries run out: the receivers are failed and retryable, every attempt with one trace id', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'http500', count: 3 });
  const report = await send(credentials, notification(['alice']), { baseUrl: emu.url, retries: 2, retryDelayMs: 1 });

  assert.deepEqual(report, {
    delivered: [],
    failed: [{ account_id: 'alice', error_code: 500, error_msg: 'HTTP 500 from upstream', retryable: true }],
    not_attempted: [],
    retry_after_secs: 0,
  });
  assert.equal(emu.requests().length, 3);
  assert.equal(new Set(emu.requests().map((r) => r.traceId)).size, 1);
  assert.equal(emu.deliveries().length, 0);
});

test('416 is not retried in place: retryable, retry_after_secs 60', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'code416', count: 1 });
  const report = await send(credentials, notification(['alice', 'bob']), { baseUrl: emu.url });
  assert.equal(emu.requests().length, 1);
  assert.deepEqual(report.failed.map((f) => [f.account_id, f.error_code, f.retryable]), [
    ['alice', 416, true],
    ['bob', 416, true],
  ]);
  assert.equal(report.retry_after_secs, 60);
});

test('Yunxin 503 is retried; a bad signature (414) is not', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'code503', count: 1 });
  const retried = await send(credentials, notification(['alice']), { baseUrl: emu.url, retryDelayMs: 1 });
  assert.deepEqual(retried.delivered, ['alice']);

  emu.reset();
  const wrong = await send({ appKey: APP_KEY, appSecret: 'not-the-secret' }, notification(['alice']), { baseUrl: emu.url });
  assert.equal(emu.requests().length, 1);
  assert.deepEqual(wrong.failed.map((f) => [f.error_code, f.retryable]), [[414, false]]);
});

test('concurrency is bounded, and an injected fetch is used', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'slow', delayMs: 30 });
  let inFlight = 0;
  let peak = 0;
  const countingFetch = async (url, init) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      return await fetch(url, init);
    } finally {
      inFlight--;
    }
  };
  const ids = receivers(3500); // 7 calls
  const report = await send(credentials, notification(ids), { baseUrl: emu.url, fetch: countingFetch, concurrency: 2 });
  assert.equal(report.delivered.length, 3500);
  assert.equal(emu.requests().length, 7);
  assert.equal(peak, 2);
});

test('an unreachable upstream is a retryable transport failure, not an exception', async (t) => {
  const emu = await emulator(t);
  const baseUrl = emu.url;
  await emu.close(); // nothing listens there any more
  const report = await send(credentials, notification(['alice']), { baseUrl, retries: 1, retryDelayMs: 1 });
  assert.equal(report.failed.length, 1);
  const [failure] = report.failed;
  assert.equal(failure.account_id, 'alice');
  assert.equal(failure.error_code, 0);
  assert.equal(failure.retryable, true);
  assert.match(failure.error_msg, /fetch failed|ECONNREFUSED/);
  assertNoSecret(report);
});

test('an aborted signal leaves calls not attempted', async (t) => {
  const emu = await emulator(t);
  const report = await send(credentials, notification(receivers(1001)), { baseUrl: emu.url, signal: AbortSignal.abort() });
  assert.equal(report.not_attempted.length, 1001);
  assert.equal(emu.requests().length, 0);
});

test('invalid input rejects with a YunxinError before anything is sent', async (t) => {
  const emu = await emulator(t);
  await assert.rejects(send(credentials, notification(['alice'], '网'.repeat(4097)), { baseUrl: emu.url }), (error) => {
    assert.ok(error instanceof YunxinError);
    assert.deepEqual([error.code, error.field, error.limit], ['too_long', 'content', 4096]);
    return true;
  });
  await assert.rejects(send(credentials, notification(['alice']), { baseUrl: emu.url, concurrency: 0 }), {
    name: 'YunxinError',
    code: 'too_few',
    field: 'concurrency',
    limit: 1,
  });
  await assert.rejects(send(credentials, notification(['alice']), { fetch: 'no' }), { code: 'invalid', field: 'fetch' });
  assert.equal(emu.requests().length, 0);
});

test('requests from buildBatchRequests go straight to fetch', async (t) => {
  const emu = await emulator(t);
  for (const request of buildBatchRequests(credentials, notification(receivers(501)), { baseUrl: emu.url })) {
    const answer = await (await fetch(request.url, request)).json();
    assert.equal(answer.code, 200, answer.msg);
  }
  assert.equal(emu.deliveries().length, 501);
});
