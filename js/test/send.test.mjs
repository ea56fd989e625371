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

// Every receiver of the input exactly once across the four lists.
function assertEachOnce(report, expected) {
  const named = [
    ...report.delivered,
    ...report.failed.map((f) => f.account_id),
    ...report.unknown.map((u) => u.account_id),
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

  assert.deepEqual(report, { delivered: ['alice', 'bob'], failed: [], unknown: [], not_attempted: [] });
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

  // The core's words for a call it gave up on, and the wait its next retry would have
  // needed (the schedule's 2 ms), rounded up to whole seconds.
  assert.deepEqual(report, {
    delivered: [],
    failed: [{ account_id: 'alice', error_code: 500, error_msg: 'gave up after 3 attempts: HTTP 500 from upstream', retryable: true }],
    unknown: [],
    not_attempted: [],
    retry_after_secs: 1,
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
  // 10,001 receivers: over the default cap, unless the caller raises it.
  await assert.rejects(send(credentials, notification(receivers(10_001)), { baseUrl: emu.url }), {
    code: 'too_many',
    field: 'receiver_ids',
    limit: 10_000,
  });
  // A CR/LF in a header value would start a header of the caller's choosing.
  await assert.rejects(send({ appKey: 'app\r\nX-Injected: 1', appSecret: 's' }, notification(['alice']), { baseUrl: emu.url }), {
    code: 'invalid',
    field: 'AppKey',
  });
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

test('receivers a partial failure names retryable go again alone, under a new trace id, once each', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['user3', 'user700'], count: 2 });
  const ids = [...receivers(1001), 'ghost-1'];
  const report = await send(credentials, notification(ids), { baseUrl: emu.url, retryDelayMs: 10, eventId: 'evt-rc' });

  assert.equal(report.delivered.length, 1001);
  assert.deepEqual(report.failed, [{ account_id: 'ghost-1', error_code: 102404, error_msg: 'account not exist', retryable: false }]);
  assert.deepEqual([report.unknown, report.not_attempted, report.retry_after_secs], [[], [], undefined]);
  assertEachOnce(report, ids);

  // Every receiver delivered exactly once: the follow-ups carried only user3 and user700.
  const counts = emu.deliveryCounts();
  assert.equal(Object.keys(counts).length, 1001);
  assert.ok(Object.values(counts).every((n) => n === 1));
  const requests = emu.requests();
  assert.deepEqual(requests.map((r) => r.receiverCount).sort((a, b) => a - b), [1, 1, 2, 500, 500]);
  assert.deepEqual(requests.filter((r) => r.receiverCount === 500).map((r) => r.fault), ['receiver-code', 'receiver-code']);
  const followUps = requests.filter((r) => r.receiverCount === 1);
  const delivered = (traceId) => emu.deliveries().filter((d) => d.traceId === traceId).map((d) => d.receiverId);
  assert.deepEqual(followUps.map((r) => delivered(r.traceId)).sort(), [['user3'], ['user700']]);
  const traceIds = requests.map((r) => r.traceId);
  assert.equal(new Set(traceIds).size, 5, 'each follow-up has a trace id of its own');
  assert.ok(followUps.every((r) => !r.replayed));
});

test('a per-receiver 416 waits for the rate limit: not re-sent in place, retryable after 60 s', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'receiver-code', code: 102416, accounts: ['bob'], count: 1 });
  const report = await send(credentials, notification(['alice', 'bob']), { baseUrl: emu.url, retryDelayMs: 1 });
  assert.deepEqual(report.delivered, ['alice']);
  assert.deepEqual(report.failed, [{ account_id: 'bob', error_code: 102416, error_msg: 'frequency control', retryable: true }]);
  assert.equal(report.retry_after_secs, 60);
  assert.equal(emu.requests().length, 1);
});

test('an answer lost on every attempt leaves the receivers unknown, never failed', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'drop', count: 2 }); // the connection closes before any answer
  const dropped = await send(credentials, notification(['alice', 'bob']), { baseUrl: emu.url, retries: 1, retryDelayMs: 1 });
  assert.deepEqual([dropped.delivered, dropped.failed, dropped.not_attempted], [[], [], []]);
  assert.deepEqual(dropped.unknown.map((u) => u.account_id), ['alice', 'bob']);
  assert.match(dropped.unknown[0].reason, /^request sent, answer lost: /);
  assert.notEqual(dropped.retry_after_secs, undefined, 'a retry may help');
  assert.equal(new Set(emu.requests().map((r) => r.traceId)).size, 1);

  emu.reset();
  emu.injectFaults({ kind: 'slow', count: 1, delayMs: 300 });
  const slow = await send(credentials, notification(['carol']), { baseUrl: emu.url, retries: 0, timeoutMs: 50 });
  assert.deepEqual(slow.unknown, [{ account_id: 'carol', reason: 'request sent, answer lost: no answer within 50 ms' }]);
  assert.deepEqual(slow.failed, []);
});

test('fetch errors: a connection never made is a failure, one lost mid-answer an unknown fate', async () => {
  const failing = (cause) => async () => {
    throw new TypeError('fetch failed', { cause });
  };
  const coded = (message, code, syscall) => Object.assign(new Error(message), { code, syscall });
  const cases = [
    [coded('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED', 'connect'), 'failed'],
    [coded('getaddrinfo ENOTFOUND nowhere.invalid', 'ENOTFOUND', 'getaddrinfo'), 'failed'],
    [new AggregateError([coded('connect ECONNREFUSED ::1:9', 'ECONNREFUSED', 'connect')], 'all failed'), 'failed'],
    [coded('other side closed', 'UND_ERR_SOCKET'), 'unknown'],
    [coded('read ECONNRESET', 'ECONNRESET', 'read'), 'unknown'],
    [new Error('Network connection lost.'), 'unknown'],
  ];
  for (const [cause, list] of cases) {
    const report = await send(credentials, notification(['alice']), { fetch: failing(cause), retries: 0 });
    assert.equal(report[list].length, 1, `${cause.message}: ${JSON.stringify(report)}`);
    assert.equal(report.failed.length + report.unknown.length, 1);
    if (list === 'failed') assert.deepEqual([report.failed[0].error_code, report.failed[0].retryable], [0, true]);
  }
  // A fetch that ignores its signal still gives up at the timeout.
  const hanging = () => new Promise(() => {});
  const started = Date.now();
  const report = await send(credentials, notification(['alice']), { fetch: hanging, retries: 0, timeoutMs: 30 });
  assert.deepEqual(report.unknown, [{ account_id: 'alice', reason: 'request sent, answer lost: no answer within 30 ms' }]);
  assert.ok(Date.now() - started < 2000);
});

test('Retry-After is the core\'s to honour: a short one is waited for, a long one reported', async () => {
  const answers = [];
  const busyThenFine = (retryAfter) => {
    let calls = 0;
    return async (url, init) => {
      answers.push(Date.now());
      calls++;
      return calls === 1
        ? new Response('busy', { status: 503, headers: { 'retry-after': retryAfter } })
        : new Response('{"code":200,"msg":"ok"}', { status: 200 });
    };
  };
  const long = await send(credentials, notification(['alice']), { fetch: busyThenFine('120'), retryDelayMs: 1 });
  assert.deepEqual(long.failed, [{ account_id: 'alice', error_code: 503, error_msg: 'HTTP 503 from upstream', retryable: true }]);
  assert.equal(long.retry_after_secs, 120);
  assert.equal(answers.length, 1);

  answers.length = 0;
  const short = await send(credentials, notification(['alice']), { fetch: busyThenFine('1'), retryDelayMs: 1, maxWaitMs: 5_000 });
  assert.deepEqual(short.delivered, ['alice']);
  assert.equal(answers.length, 2);
  assert.ok(answers[1] - answers[0] >= 990, `retried after ${answers[1] - answers[0]} ms`);
});

test('aborting mid-flight: the call in flight is unknown, the calls never sent not attempted', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults({ kind: 'slow', delayMs: 2_000 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const started = Date.now();
  const ids = receivers(1001);
  const report = await send(credentials, notification(ids), { baseUrl: emu.url, concurrency: 1, signal: controller.signal });
  assert.ok(Date.now() - started < 1_500, 'send() returns at the abort, not at the slow answer');
  assert.deepEqual(report.delivered, []);
  assert.equal(report.unknown.length, 500);
  assert.equal(report.unknown[0].reason, 'request sent, answer lost: aborted by the caller');
  assert.equal(report.not_attempted.length, 501);
  assertEachOnce(report, ids);
});

test('unknown and out-of-range options are refused, with the name that was meant', async (t) => {
  const emu = await emulator(t);
  const refused = async (options, field, code, pattern) =>
    assert.rejects(send(credentials, notification(['alice']), { baseUrl: emu.url, ...options }), (error) => {
      assert.ok(error instanceof YunxinError, String(error));
      assert.deepEqual([error.code, error.field], [code, field], error.message);
      if (pattern) assert.match(error.message, pattern);
      return true;
    });
  await refused({ baseURL: emu.url }, 'baseURL', 'invalid', /did you mean `baseUrl`\?/);
  await refused({ timeout: 1000 }, 'timeout', 'invalid', /did you mean `timeoutMs`\?/);
  await refused({ retryDelay: 10 }, 'retryDelay', 'invalid', /did you mean `retryDelayMs`\?/);
  await refused({ retires: 3 }, 'retires', 'invalid', /did you mean `retries`\?/);
  await refused({ EventId: 'x' }, 'EventId', 'invalid', /did you mean `eventId`\?/);
  await refused({ idempotencyKey: 'x' }, 'idempotencyKey', 'invalid', /is not an option of send\(\) \(its options: baseUrl, /);
  await refused({ timeout: undefined }, 'timeout', 'invalid');
  // setTimeout turns a delay over 2^31 - 1 ms into 1 ms: refused rather than misread.
  for (const field of ['timeoutMs', 'retryDelayMs', 'maxWaitMs']) {
    await assert.rejects(send(credentials, notification(['alice']), { baseUrl: emu.url, [field]: 2 ** 31 }), {
      name: 'YunxinError',
      code: 'too_many',
      field,
      limit: 2 ** 31 - 1,
    });
  }
  await refused({ retries: -1 }, 'retries', 'too_few');
  await refused({ retries: 2 ** 32 }, 'retries', 'invalid');
  await refused({ retryDelayMs: '10' }, 'retryDelayMs', 'invalid');
  assert.equal(emu.requests().length, 0);

  const fine = await send(credentials, notification(['alice']), { baseUrl: emu.url, timeoutMs: 2 ** 31 - 1, maxWaitMs: 0, retries: 0 });
  assert.deepEqual(fine.delivered, ['alice']);
});

test('onProgress: counts after every attempt, from the same state machine as the report', async (t) => {
  const emu = await emulator(t);
  const ids = [...receivers(1200), ...receivers(3, 'ghost')];
  const seen = [];
  const report = await send(credentials, notification(ids), { baseUrl: emu.url, concurrency: 1, onProgress: (p) => seen.push(p) });

  assert.equal(emu.requests().length, 3);
  assert.deepEqual(
    seen.map(({ attempts, delivered, failed, pending }) => [attempts, delivered, failed, pending]),
    [
      [1, 500, 0, 703],
      [2, 1000, 0, 203],
      [3, 1200, 3, 0],
    ],
  );
  assert.ok(seen.every((p) => p.total === 1203 && p.unknown === 0));
  assert.equal(report.delivered.length, 1200);
});

test('onProgress: `last` is the attempt that settled, with the outcome and what the delivery made of it', async (t) => {
  const emu = await emulator(t);
  emu.injectFaults([{ kind: 'http502', count: 1 }, { kind: 'receiver-code', code: 102503, accounts: ['user3'], count: 1 }]);
  const seen = [];
  const report = await send(credentials, notification([...receivers(600), 'ghost-1']), {
    baseUrl: emu.url,
    concurrency: 1,
    retryDelayMs: 0,
    onProgress: ({ last }) => seen.push(last),
  });
  assert.equal(report.delivered.length, 600);

  // In the order the core chose; each found by its call and attempt number.
  const find = (call, attempt) => seen.find((last) => last.call === call && last.attempt === attempt);
  const [first, retry, followUp, second] = [find(0, 1), find(0, 2), find(0, 3), find(1, 1)];
  assert.equal(seen.length, 4);
  // Call 0 refused by a 502, retried under its trace id, then partially failed.
  assert.deepEqual([first.call, first.attempt, first.receivers, first.outcome.kind, first.recorded.recorded], [0, 1, 500, 'transport', 'retry']);
  assert.equal(first.outcome.http_status, 502);
  assert.ok(Number.isSafeInteger(first.recorded.at_ms));
  assert.deepEqual([retry.call, retry.attempt, retry.outcome.kind, retry.recorded.recorded], [0, 2, 'partial_failure', 'retry']);
  assert.equal(retry.traceId, first.traceId);
  assert.deepEqual(retry.outcome.failed, [{ account_id: 'user3', error_code: 102503, error_msg: 'server busy' }]);
  // Call 1: ghost-1 fails for good, nothing to retry.
  assert.deepEqual([second.call, second.attempt, second.receivers, second.outcome.kind], [1, 1, 101, 'partial_failure']);
  assert.deepEqual(second.recorded, { recorded: 'done', gave_up: false });
  // user3 alone, in a follow-up of call 0 under a trace id of its own.
  assert.deepEqual([followUp.call, followUp.attempt, followUp.receivers, followUp.outcome.kind], [0, 3, 1, 'delivered']);
  assert.notEqual(followUp.traceId, first.traceId);
  assert.deepEqual(
    emu.requests().map((r) => r.traceId),
    seen.map((last) => last.traceId),
  );
});

test('a notification given as JSON bytes goes to the core as it is', async (t) => {
  const emu = await emulator(t);
  const body = '{"sender_id":"ops-bot","receiver_ids":["alice"],"content":{"n":123456789012345678901234567890}}';
  const report = await send(credentials, new TextEncoder().encode(body), { baseUrl: emu.url });
  assert.deepEqual(report.delivered, ['alice']);
  // Every digit of the number: JSON.parse would have rounded it.
  assert.equal(emu.deliveries()[0].content, '{"n":123456789012345678901234567890}');

  await assert.rejects(send(credentials, Buffer.from('{"sender_id": "ops-bot",\n "receiver_ids": [}'), { baseUrl: emu.url }), (error) => {
    assert.ok(error instanceof YunxinError);
    assert.equal(error.code, 'malformed_json');
    assert.match(error.message, /line 2 column/);
    return true;
  });
  assert.equal(emu.requests().length, 1);
});

test('onProgress that throws stops sending; send() rejects with that very error', async (t) => {
  const emu = await emulator(t);
  const mine = new Error('stop here');
  await assert.rejects(
    send(credentials, notification(receivers(1500)), {
      baseUrl: emu.url,
      concurrency: 1,
      onProgress: () => {
        throw mine;
      },
    }),
    (error) => error === mine,
  );
  assert.equal(emu.requests().length, 1, 'nothing more was sent');
  await assert.rejects(send(credentials, notification(['a']), { baseUrl: emu.url, onProgress: 'yes' }), (error) => {
    assert.ok(error instanceof YunxinError);
    assert.equal(error.field, 'onProgress');
    return true;
  });
  // Misspelt options are still refused, not ignored.
  await assert.rejects(send(credentials, notification(['a']), { baseUrl: emu.url, onProgres: () => {} }), (error) => {
    assert.match(error.message, /did you mean `onProgress`/);
    return true;
  });
  assert.equal(emu.requests().length, 1);
});
