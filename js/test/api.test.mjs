// The built package, imported with `import`: signing, validation, planning, answers,
// reports and callbacks, checked against independent implementations (node:crypto) and
// the documented limits. send() has its own file (send.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';

import { linkPackage } from '../test-support/package.mjs';

linkPackage();
const yunxin = await import('yunxin-edge');
const {
  Delivery,
  YunxinError,
  answerLost,
  buildBatchRequests,
  checksum,
  classifyResponse,
  mergeReport,
  parseBatchResponse,
  resignRequest,
  signHeaders,
  transportFailure,
  validateNotification,
  signYunxinCallback,
  verifyYunxinCallback,
} = yunxin;

const SECRET = 'app-secret-秘密-do-not-leak';
const credentials = { appKey: 'app-key', appSecret: SECRET };
const sha1 = (text) => createHash('sha1').update(text, 'utf8').digest('hex');
const md5 = (bytes) => createHash('md5').update(bytes).digest('hex');
const receivers = (n, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const notification = (overrides = {}) => ({ sender_id: 'ops-bot', receiver_ids: ['alice'], content: 'hello', ...overrides });

// Random text from a mix of alphabets: ASCII, CJK, emoji (astral), accents, and
// characters that need escaping in JSON.
const ALPHABETS = ['abcXYZ019', '网易云信通知秘密', '😀🚀👍🏽', 'éüßñ', '"\\\n\t '];
function randomText(maxLength, { ascii = false } = {}) {
  const alphabets = ascii ? ['abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!'] : ALPHABETS;
  let out = '';
  for (let n = randomInt(maxLength + 1); n > 0; n--) {
    const chars = [...alphabets[randomInt(alphabets.length)]];
    out += chars[randomInt(chars.length)];
  }
  return out;
}

function assertYunxinError(fn, { code, field, limit }) {
  let thrown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown, 'expected an error');
  assert.ok(thrown instanceof YunxinError, `expected a YunxinError, got ${thrown?.constructor?.name}: ${thrown}`);
  assert.ok(thrown instanceof Error);
  assert.equal(thrown.name, 'YunxinError');
  assert.equal(thrown.code, code, thrown.message);
  if (field !== undefined) assert.equal(thrown.field, field, thrown.message);
  assert.equal(thrown.limit, limit, thrown.message);
  assert.ok(!thrown.message.includes(SECRET), 'the secret leaked into a message');
  return thrown;
}

test('import resolves the node entry; require resolves the CommonJS build, and they are one instance', () => {
  assert.match(import.meta.resolve('yunxin-edge'), /\/js\/pkg\/node\.mjs$/);
  const require = createRequire(import.meta.url);
  assert.match(require.resolve('yunxin-edge'), /\/js\/pkg\/node\.cjs$/);
  const viaRequire = require('yunxin-edge');
  assert.equal(viaRequire.YunxinError, YunxinError, 'import and require must share one YunxinError class');
  assert.deepEqual(Object.keys(viaRequire).sort(), Object.keys(yunxin).sort());
});

test('checksum: the reference vector', () => {
  assert.equal(checksum('secret', 'abc', '1443592222'), '6461e65304e590d2268093aa1d290482274995b9');
  assert.equal(checksum('secret', 'abc', 1443592222), '6461e65304e590d2268093aa1d290482274995b9');
});

test('checksum equals node:crypto over 200 random ASCII and non-ASCII inputs', () => {
  for (let i = 0; i < 200; i++) {
    const ascii = i % 2 === 0;
    const secret = randomText(40, { ascii });
    const nonce = randomText(128, { ascii });
    const curTime = String(randomInt(2 ** 40));
    assert.equal(checksum(secret, nonce, curTime), sha1(secret + nonce + curTime), JSON.stringify({ secret, nonce, curTime }));
  }
});

test('signHeaders: deterministic with now/nonce/traceId, fresh and current without', () => {
  const fixed = signHeaders(credentials, { now: 1_443_592_222_999, nonce: '网易-nonce', traceId: 'trace-1' });
  assert.deepEqual(fixed, {
    AppKey: 'app-key',
    Nonce: '网易-nonce',
    CurTime: '1443592222', // seconds, rounded down
    CheckSum: sha1(`${SECRET}网易-nonce1443592222`),
    'X-custom-traceid': 'trace-1',
  });
  assert.equal(signHeaders(credentials, { now: new Date(1_443_592_222_000), nonce: 'n' }).CurTime, '1443592222');

  const before = Math.floor(Date.now() / 1000);
  const a = signHeaders(credentials);
  const b = signHeaders(credentials);
  assert.match(a.Nonce, /^[0-9a-f]{32}$/);
  assert.notEqual(a.Nonce, b.Nonce);
  assert.ok(Number(a.CurTime) >= before && Number(a.CurTime) <= before + 2);
  assert.equal(a.CheckSum, sha1(SECRET + a.Nonce + a.CurTime));
  assert.equal('X-custom-traceid' in a, false);

  assertYunxinError(() => signHeaders(credentials, { nonce: 'n'.repeat(129) }), { code: 'too_long', field: 'Nonce', limit: 128 });
  assertYunxinError(() => signHeaders(credentials, { now: -1 }), { code: 'invalid', field: 'now' });
  assertYunxinError(() => signHeaders(credentials, { now: new Date('nope') }), { code: 'invalid', field: 'now' });
});

test('validation errors carry code, field and limit', () => {
  const cases = [
    [notification({ content: '通'.repeat(4097) }), 'too_long', 'content', 4096],
    [notification({ content: '' }), 'missing', 'content', undefined],
    [notification({ receiver_ids: [] }), 'too_few', 'receiver_ids', 1],
    [notification({ receiver_ids: ['ok', 'x'.repeat(33)] }), 'too_long', 'receiver_ids[1]', 32],
    [notification({ receiver_ids: ['has space'] }), 'invalid', 'receiver_ids[0]', undefined],
    [notification({ receiver_ids: ['ok', 7] }), 'invalid_schema', 'receiver_ids[1]', undefined],
    [notification({ receiver_ids: 'alice' }), 'invalid_schema', 'receiver_ids', undefined],
    [notification({ sender_id: '' }), 'missing', 'sender_id', undefined],
    [notification({ sender_id: undefined }), 'missing', 'sender_id', undefined],
    [notification({ sound: 's'.repeat(31) }), 'too_long', 'sound', 30],
    [notification({ push_config: { push_content: 'p'.repeat(501) } }), 'too_long', 'push_config.push_content', 500],
    [notification({ push_config: { push_payload: 'p'.repeat(2049) } }), 'too_long', 'push_config.push_payload', 2048],
    [notification({ push_config: { push_forcepush_content: '推'.repeat(501) } }), 'too_long', 'push_config.push_forcepush_content', 500],
    [notification({ push_config: { push_forcepush_ids: receivers(101) } }), 'too_many', 'push_config.push_forcepush_ids', 100],
    [notification({ push_config: { push_enabled: 'yes' } }), 'invalid_schema', 'push_config.push_enabled', undefined],
    [notification({ notification_config: { high_priority: 1.5 } }), 'invalid_schema', 'notification_config.high_priority', undefined],
    [notification({ recevier_ids: ['typo'] }), 'invalid_schema', 'recevier_ids', undefined],
    [notification({ route_config: { route_env: 'x' } }), 'invalid_schema', 'route_config.route_env', undefined],
  ];
  for (const [input, code, field, limit] of cases) {
    assertYunxinError(() => buildBatchRequests(credentials, input), { code, field, limit });
    assertYunxinError(() => validateNotification(input), { code, field, limit });
  }
  // Limits count Unicode characters: 4096 CJK characters or emoji are fine.
  assert.equal(buildBatchRequests(credentials, notification({ content: '通'.repeat(4096) })).length, 1);
  assert.equal(buildBatchRequests(credentials, notification({ content: '😀'.repeat(4096) })).length, 1);

  assertYunxinError(() => buildBatchRequests(credentials, notification({ receiver_ids: receivers(11) }), { maxReceivers: 10 }), {
    code: 'too_many',
    field: 'receiver_ids',
    limit: 10,
  });
  assertYunxinError(() => buildBatchRequests(credentials, notification(), { baseUrl: 'ftp://example.com' }), {
    code: 'invalid',
    field: 'base_url',
  });
});

test('credentials are checked, and the secret never appears in an error', () => {
  assertYunxinError(() => buildBatchRequests(undefined, notification()), { code: 'missing', field: 'credentials' });
  assertYunxinError(() => buildBatchRequests({ appKey: 'k' }, notification()), { code: 'missing', field: 'credentials.appSecret' });
  assertYunxinError(() => buildBatchRequests({ appKey: 'k', appSecret: 42 }, notification()), {
    code: 'invalid',
    field: 'credentials.appSecret',
  });
  // Every failing call with the real secret: no message may contain it.
  assertYunxinError(() => buildBatchRequests(credentials, notification({ content: SECRET.repeat(500) })), {
    code: 'too_long',
    field: 'content',
    limit: 4096,
  });
  assertYunxinError(() => signHeaders(credentials, { nonce: SECRET.repeat(10) }), { code: 'too_long', field: 'Nonce', limit: 128 });
});

test('no input makes the WebAssembly trap: every call returns or throws a YunxinError', () => {
  const weird = [undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 64, 10n, '', 'x', true, [], [1, 'a'], {}, Symbol('s'),
    () => 1, new Date(NaN), new Uint8Array(3), new Map([['a', 1]]), Object.create(null),
    new Proxy({}, { get() { throw new Error('trap'); } }), { sender_id: 5, receiver_ids: [null], content: { a: [1n] } },
    // Objects that would run code (and throw) if WebAssembly read them directly.
    new Proxy(new Date(0), { get() { throw new Error('trap'); } }),
    new Proxy(new Uint8Array(2), { get() { throw new Error('trap'); } }),
    new Proxy(new ArrayBuffer(2), { get() { throw new Error('trap'); } }),
    Object.defineProperty(new Date(0), 'getTime', { value() { throw new Error('trap'); } }),
    Object.defineProperty(new Uint8Array(2), 'length', { get() { throw new Error('trap'); } }),
    (() => { const cyclic = { sender_id: 'a', receiver_ids: ['b'] }; cyclic.content = cyclic; return cyclic; })()];
  const calls = [
    (v) => checksum(v, v, v),
    (v) => signHeaders(v, v),
    (v) => signHeaders(credentials, v),
    (v) => buildBatchRequests(credentials, v, v),
    (v) => buildBatchRequests(v, notification()),
    (v) => buildBatchRequests(credentials, notification(), { baseUrl: v, eventId: v, maxReceivers: v, now: v }),
    (v) => validateNotification(v, v),
    (v) => resignRequest(credentials, v, v),
    (v) => parseBatchResponse(v),
    (v) => classifyResponse(v, v),
    (v) => classifyResponse(200, v),
    (v) => transportFailure(v, v),
    (v) => mergeReport(v),
    (v) => mergeReport([v]),
    (v) => mergeReport([{ receiverIds: ['a'], outcome: v }]),
    (v) => verifyYunxinCallback(credentials, v, v, v),
    (v) => verifyYunxinCallback(v, { AppKey: 'k' }, '{}'),
    (v) => answerLost(v),
    (v) => new Delivery(credentials, v, v).free(),
    (v) => new Delivery(v, notification()).free(),
    (v) => new Delivery(credentials, notification(), { baseUrl: v, eventId: v, maxReceivers: v, retries: v, retryDelayMs: v, maxWaitMs: v }).free(),
    (v) => {
      const delivery = new Delivery(credentials, notification());
      try {
        delivery.poll(v);
        const { id } = delivery.poll(0);
        delivery.record(v, v, v, v);
        delivery.record(id, v);
        delivery.record(id, { kind: 'delivered' }, v, v);
      } finally {
        delivery.free();
      }
    },
  ];
  for (const call of calls) {
    for (const [i, value] of weird.entries()) {
      try {
        call(value);
      } catch (error) {
        assert.ok(error instanceof YunxinError, `${call} with weird[${i}]: ${error}`);
        assert.notEqual(error.code, 'internal', `${call} with weird[${i}]: ${error.message}`);
      }
    }
  }
  // And the instance is still healthy afterwards.
  assert.equal(checksum('secret', 'abc', '1443592222'), '6461e65304e590d2268093aa1d290482274995b9');
});

test('the notification is read by the core: JSON paths, null as absent, an object at the top', () => {
  const cases = [
    [notification({ receiver_ids: ['a', null] }), 'invalid_schema', 'receiver_ids[1]'],
    [notification({ push_config: { push_forcepush_ids: ['a', 'b', true] } }), 'invalid_schema', 'push_config.push_forcepush_ids[2]'],
    [notification({ notification_config: { bogus: 1 } }), 'invalid_schema', 'notification_config.bogus'],
    [['ops-bot', ['alice'], 'hi'], 'invalid_schema', '.'],
    ['just text', 'invalid_schema', '.'],
    [notification({ content: null }), 'missing', 'content'],
  ];
  for (const [input, code, field] of cases) {
    const error = assertYunxinError(() => validateNotification(input), { code, field, limit: undefined });
    if (code === 'invalid_schema') assert.match(error.message, /does not match the notification schema/);
    assertYunxinError(() => buildBatchRequests(credentials, input), { code, field, limit: undefined });
    assertYunxinError(() => new Delivery(credentials, input), { code, field, limit: undefined });
  }
  // Nulls count as absent in the settings objects too, and nothing is sent for them.
  const { requestCount } = validateNotification(notification({ sound: null, push_config: { push_content: null } }));
  assert.equal(requestCount, 1);
});

test('1,201 receivers become 3 signed requests of 500, 500 and 201', () => {
  const requests = buildBatchRequests(credentials, notification({ receiver_ids: receivers(1201), content: { deploy: 'ok' } }), {
    baseUrl: 'http://127.0.0.1:9/base/',
  });
  assert.equal(requests.length, 3);
  assert.deepEqual(requests.map((r) => r.receiverIds.length), [500, 500, 201]);
  assert.deepEqual(requests.flatMap((r) => r.receiverIds), receivers(1201));
  for (const [i, request] of requests.entries()) {
    assert.equal(request.index, i);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, 'http://127.0.0.1:9/base/im/v2/custom_notification/batch');
    const body = JSON.parse(request.body);
    assert.deepEqual(body, { sender_id: 'ops-bot', receiver_ids: request.receiverIds, content: '{"deploy":"ok"}' });
    const h = request.headers;
    assert.equal(h.AppKey, 'app-key');
    assert.equal(h.CheckSum, sha1(SECRET + h.Nonce + h.CurTime));
    assert.equal(h['X-custom-traceid'], request.traceId);
    assert.equal(h['Content-Type'], 'application/json;charset=utf-8');
  }
  assert.equal(new Set(requests.map((r) => r.traceId)).size, 3);
  assert.equal(new Set(requests.map((r) => r.headers.Nonce)).size, 3);
  // Plain data: survives JSON, so it can be queued and re-signed elsewhere.
  assert.deepEqual(JSON.parse(JSON.stringify(requests)), requests);
});

test('null and undefined fields are absent; content is sent exactly as given', () => {
  const [request] = buildBatchRequests(
    credentials,
    notification({ content: { k: null, list: [null, '网'] }, sound: undefined, push_config: null, route_config: { route_environment: null } }),
  );
  assert.equal(request.body, '{"sender_id":"ops-bot","receiver_ids":["alice"],"content":"{\\"k\\":null,\\"list\\":[null,\\"网\\"]}","route_config":{}}');
});

test('receivers are de-duplicated case-insensitively, first spelling kept', () => {
  const [request] = buildBatchRequests(credentials, notification({ receiver_ids: ['Alice', 'bob', 'alice', 'BOB', 'carol'] }));
  assert.deepEqual(request.receiverIds, ['Alice', 'bob', 'carol']);
  assert.deepEqual(validateNotification(notification({ receiver_ids: ['A', 'a', ...receivers(600)] })).requestCount, 2);
});

test('an eventId derives stable trace ids; without one they are random', () => {
  const input = notification({ receiver_ids: receivers(1001) });
  const first = buildBatchRequests(credentials, input, { eventId: 'evt-42' }).map((r) => r.traceId);
  const again = buildBatchRequests(credentials, input, { eventId: 'evt-42' }).map((r) => r.traceId);
  const other = buildBatchRequests(credentials, input, { eventId: 'evt-43' }).map((r) => r.traceId);
  assert.deepEqual(first, again);
  assert.equal(new Set([...first, ...other]).size, 6);
  const random = buildBatchRequests(credentials, input).map((r) => r.traceId);
  assert.equal(new Set([...first, ...random]).size, 6);
  assertYunxinError(() => buildBatchRequests(credentials, input, { eventId: '' }), { code: 'missing', field: 'eventId' });
});

test('resignRequest keeps trace id, body and url, and signs anew', () => {
  const [request] = buildBatchRequests(credentials, notification(), { baseUrl: 'https://open-sg.yunxinapi.com', now: 1_000_000_000_000 });
  const stored = JSON.parse(JSON.stringify(request));
  const retry = resignRequest(credentials, stored, { now: 1_000_000_300_000, nonce: 'again' });
  assert.deepEqual({ ...retry, headers: undefined }, { ...request, headers: undefined });
  assert.equal(retry.headers['X-custom-traceid'], request.traceId);
  assert.equal(retry.headers.CurTime, '1000000300');
  assert.equal(retry.headers.Nonce, 'again');
  assert.equal(retry.headers.CheckSum, sha1(`${SECRET}again1000000300`));
  assert.notEqual(resignRequest(credentials, stored).headers.Nonce, request.headers.Nonce);
  assertYunxinError(() => resignRequest(credentials, { ...stored, url: 'https://example.com/other' }), {
    code: 'invalid',
    field: 'request.url',
  });
  assertYunxinError(() => resignRequest(credentials, { ...stored, traceId: undefined }), { code: 'missing', field: 'request.traceId' });
  // A trace id with CR/LF would start a header of the sender's choosing.
  assertYunxinError(() => resignRequest(credentials, { ...stored, traceId: 't\r\nX-Injected: 1' }), {
    code: 'invalid',
    field: 'X-custom-traceid',
  });
});

test('header values with CR, LF or NUL are refused wherever they are signed', () => {
  for (const bad of ['a\r\nX-Injected: 1', 'a\nb', 'a\u0000b']) {
    assertYunxinError(() => signHeaders(credentials, { nonce: bad }), { code: 'invalid', field: 'Nonce' });
    assertYunxinError(() => signHeaders(credentials, { nonce: 'n', traceId: bad }), { code: 'invalid', field: 'X-custom-traceid' });
    assertYunxinError(() => signHeaders({ appKey: bad, appSecret: 's' }, { nonce: 'n' }), { code: 'invalid', field: 'AppKey' });
    assertYunxinError(() => buildBatchRequests({ appKey: bad, appSecret: 's' }, notification()), { code: 'invalid', field: 'AppKey' });
  }
});

test('parseBatchResponse reads text, bytes and objects, and normalises both failed_list shapes', () => {
  const text = '{"code":200,"msg":"success","data":{"success_list":["hkj1"],"failed_list":[{"account_id":"hkj-100","error_msg":"error","error_code":102404}]}}';
  const expected = {
    code: 200,
    msg: 'success',
    data: { success_list: ['hkj1'], failed_list: [{ account_id: 'hkj-100', error_code: 102404, error_msg: 'error' }] },
  };
  assert.deepEqual(parseBatchResponse(text), expected);
  assert.deepEqual(parseBatchResponse(new TextEncoder().encode(text)), expected);
  assert.deepEqual(parseBatchResponse(JSON.parse(text)), expected);
  assert.deepEqual(parseBatchResponse('{"code":200,"data":{"failed_list":["x"]}}').data.failed_list, [
    { account_id: 'x', error_code: 0, error_msg: '' },
  ]);
  assert.deepEqual(parseBatchResponse('{"code":414,"msg":"bad","data":null}').data, { success_list: [], failed_list: [] });
  assertYunxinError(() => parseBatchResponse('<html>502</html>'), { code: 'response' });
  assertYunxinError(() => parseBatchResponse({ msg: 'no code' }), { code: 'response' });
});

test('classifyResponse and transportFailure give the retry verdicts of the reference', () => {
  const rejected = (code) => classifyResponse(200, JSON.stringify({ code, msg: 'm' }));
  assert.deepEqual(classifyResponse(200, '{"code":200,"msg":"ok"}'), { kind: 'delivered', success: [], retry: { verdict: 'permanent' } });
  assert.deepEqual(rejected(416).retry, { verdict: 'retry', min_delay_secs: 60 });
  for (const code of [449, 500, 503, 514]) assert.deepEqual(rejected(code).retry, { verdict: 'retry', min_delay_secs: 0 });
  for (const code of [403, 404, 405, 414, 417, 419, 422, 431]) assert.deepEqual(rejected(code).retry, { verdict: 'permanent' });
  assert.deepEqual(classifyResponse(502, '<html>'), {
    kind: 'transport',
    http_status: 502,
    reason: 'HTTP 502 from upstream',
    retry: { verdict: 'retry', min_delay_secs: 0 },
  });
  assert.equal(classifyResponse(400, '').retry.verdict, 'permanent');
  assert.equal(classifyResponse(429, '').retry.verdict, 'retry');
  assert.equal(classifyResponse(200, 'not json').kind, 'transport');
  assert.deepEqual(transportFailure('timed out'), {
    kind: 'transport',
    http_status: null,
    reason: 'timed out',
    retry: { verdict: 'retry', min_delay_secs: 0 },
  });
});

test('mergeReport names every receiver exactly once', () => {
  const partial = classifyResponse(
    200,
    JSON.stringify({ code: 200, data: { success_list: ['a1'], failed_list: [{ account_id: 'a2', error_code: 102404, error_msg: 'no' }] } }),
  );
  const parts = [
    { receiverIds: ['A1', 'A2', 'a3'], outcome: partial }, // Yunxin answers lower-cased ids
    { receiverIds: ['b1'], outcome: classifyResponse(200, '{"code":416,"msg":"frequency control"}') },
    { receiverIds: ['c1'], outcome: transportFailure('no answer') },
    { receiverIds: ['d1'], outcome: null },
    { receiverIds: ['e1'] },
  ];
  const report = mergeReport(parts);
  assert.deepEqual(report, {
    delivered: ['A1', 'a3'],
    failed: [
      { account_id: 'A2', error_code: 102404, error_msg: 'no', retryable: false },
      { account_id: 'b1', error_code: 416, error_msg: 'frequency control', retryable: true },
      { account_id: 'c1', error_code: 0, error_msg: 'no answer', retryable: true },
    ],
    unknown: [],
    not_attempted: [
      { account_id: 'd1', reason: 'not sent' },
      { account_id: 'e1', reason: 'not sent' },
    ],
    retry_after_secs: 60,
  });
  // Outcomes survive JSON too.
  assert.deepEqual(mergeReport(JSON.parse(JSON.stringify(parts))), report);
  assert.deepEqual(mergeReport([]), { delivered: [], failed: [], unknown: [], not_attempted: [] });
  assertYunxinError(() => mergeReport([{ receiverIds: ['x'], outcome: { kind: 'maybe' } }]), {
    code: 'invalid',
    field: 'parts[0].outcome',
  });
  assertYunxinError(() => mergeReport([{ outcome: null }]), { code: 'missing', field: 'parts[0].receiverIds' });
});

test('answerLost: a request that went out without an answer leaves its receivers unknown', () => {
  const lost = answerLost('no answer within 10000 ms');
  assert.deepEqual(lost, { kind: 'answer_lost', reason: 'no answer within 10000 ms', retry: { verdict: 'retry', min_delay_secs: 0 } });
  const report = mergeReport([
    { receiverIds: ['a'], outcome: lost },
    { receiverIds: ['b'], outcome: transportFailure('connect ECONNREFUSED') },
  ]);
  assert.deepEqual(report, {
    delivered: [],
    failed: [{ account_id: 'b', error_code: 0, error_msg: 'connect ECONNREFUSED', retryable: true }],
    unknown: [{ account_id: 'a', reason: 'request sent, answer lost: no answer within 10000 ms' }],
    not_attempted: [],
    retry_after_secs: 0,
  });
  assertYunxinError(() => answerLost(undefined), { code: 'invalid', field: 'reason' });
});

test('Delivery: the core decides every retry; the caller only sends and records', () => {
  const delivery = new Delivery(credentials, notification({ receiver_ids: [...receivers(501), 'ghost'] }), {
    baseUrl: 'http://127.0.0.1:9',
    eventId: 'evt-d',
    retries: 2,
    retryDelayMs: 100,
  });
  try {
    // Two calls, both due now: poll hands out one attempt each, then says wait for them.
    const first = delivery.poll(1_000);
    const second = delivery.poll(1_000);
    assert.deepEqual([first.action, second.action], ['send', 'send']);
    assert.deepEqual(delivery.poll(1_000), { action: 'wait', untilMs: null });
    assert.deepEqual(delivery.progress(), { total: 502, delivered: 0, failed: 0, unknown: 0, pending: 502 });
    const { request } = first;
    assert.equal(request.url, 'http://127.0.0.1:9/im/v2/custom_notification/batch');
    assert.equal(request.headers['X-custom-traceid'], request.traceId);
    assert.equal(request.headers.CheckSum, sha1(SECRET + request.headers.Nonce + request.headers.CurTime));
    assert.deepEqual(request.receiverIds, receivers(500));
    assert.equal(request.traceId, buildBatchRequests(credentials, notification({ receiver_ids: receivers(501) }), { eventId: 'evt-d' })[0].traceId);

    // The first call: user7 busy (retryable, per receiver), the rest delivered.
    const busy = { code: 200, data: { failed_list: [{ account_id: 'user7', error_code: 102503, error_msg: 'server busy' }] } };
    assert.deepEqual(delivery.record(first.id, classifyResponse(200, JSON.stringify(busy)), undefined, 1_010), { recorded: 'retry', at_ms: 1_110 });
    // The second call: a 503 with Retry-After 120 s, longer than any wait of the schedule.
    assert.deepEqual(delivery.record(second.id, classifyResponse(503, 'busy'), 120, 1_020), { recorded: 'done', gave_up: true });
    assert.deepEqual(delivery.record(second.id, classifyResponse(200, '{"code":200}')), { recorded: 'stale' });

    // user7 waits for its follow-up; the second call is settled.
    assert.deepEqual(delivery.progress(), { total: 502, delivered: 499, failed: 2, unknown: 0, pending: 1 });
    // user7 alone, after the first scheduled wait, under a trace id of its own.
    assert.deepEqual(delivery.poll(1_050), { action: 'wait', untilMs: 1_110 });
    const followUp = delivery.poll(1_110);
    assert.deepEqual(followUp.request.receiverIds, ['user7']);
    assert.notEqual(followUp.request.traceId, request.traceId);
    assert.equal(JSON.parse(followUp.request.body).receiver_ids.length, 1);
    delivery.record(followUp.id, answerLost('connection reset'), undefined, 1_200);
    // Lost: the same receivers again, same trace id.
    const again = delivery.poll(1_400);
    assert.equal(again.request.traceId, followUp.request.traceId);
    delivery.record(again.id, classifyResponse(200, '{"code":200}'), undefined, 1_500);

    const done = delivery.poll(1_500);
    assert.equal(done.action, 'done');
    assert.deepEqual(done.report, delivery.report());
    assert.equal(done.report.delivered.length, 500);
    assert.deepEqual(done.report.failed, [
      { account_id: 'user500', error_code: 503, error_msg: 'HTTP 503 from upstream', retryable: true },
      { account_id: 'ghost', error_code: 503, error_msg: 'HTTP 503 from upstream', retryable: true },
    ]);
    assert.deepEqual(done.report.unknown, []);
    assert.equal(done.report.retry_after_secs, 120);
    assert.deepEqual(delivery.progress(), { total: 502, delivered: 500, failed: 2, unknown: 0, pending: 0 });
  } finally {
    delivery.free();
  }
  assertYunxinError(() => delivery.poll(), { code: 'invalid' });
  assertYunxinError(() => new Delivery(credentials, notification(), { retryDelay: 5 }), { code: 'invalid', field: 'retryDelay' });
  assertYunxinError(() => new Delivery(credentials, notification(), { retries: 2 ** 32 }), { code: 'invalid', field: 'retries' });
  const unused = new Delivery(credentials, notification());
  assert.deepEqual(unused.record('0/9', answerLost('x')), { recorded: 'stale' });
  assertYunxinError(() => unused.record('nope', answerLost('x')), { code: 'invalid', field: 'id' });
  assertYunxinError(() => unused.record('0/1', { kind: 'maybe' }), { code: 'invalid', field: 'outcome' });
  unused.free();
});

test('verifyYunxinCallback accepts a genuine callback in every header style and rejects forgeries', () => {
  const body = new TextEncoder().encode('{"eventType":"1","body":"网易"}');
  const now = 1_700_000_000_123;
  const curTime = String(now - 1000);
  const bodyMd5 = md5(body);
  const genuine = { AppKey: 'app-key', CurTime: curTime, MD5: bodyMd5, CheckSum: sha1(SECRET + bodyMd5 + curTime) };
  const options = { now };

  // Genuine: the parsed body comes back, whatever form the raw body came in.
  const event = { eventType: '1', body: '网易' };
  assert.deepEqual(verifyYunxinCallback(credentials, genuine, body, options), event);
  assert.deepEqual(verifyYunxinCallback(credentials, new Headers(genuine), body, options), event);
  verifyYunxinCallback(credentials, Object.fromEntries(Object.entries(genuine).map(([k, v]) => [k.toLowerCase(), v])), body.buffer, options);
  verifyYunxinCallback(credentials, genuine, new TextDecoder().decode(body), options);
  verifyYunxinCallback(credentials, genuine, Buffer.from(body), options);

  const rejected = (headers, rawBody = body, opts = options) =>
    assertYunxinError(() => verifyYunxinCallback(credentials, headers, rawBody, opts), { code: 'callback' });
  assert.match(rejected(genuine, new TextEncoder().encode('{"eventType":"2"}')).message, /MD5/);
  assert.match(rejected({ ...genuine, CheckSum: sha1(`wrong${bodyMd5}${curTime}`) }).message, /CheckSum/);
  assert.match(rejected({ ...genuine, AppKey: 'other' }).message, /AppKey/);
  assert.match(rejected(genuine, body, { now: now + 10 * 60 * 1000 }).message, /CurTime/);
  assert.match(rejected({ ...genuine, MD5: undefined }).message, /MD5 header is missing/);
  // The core's words (CallbackError), empty headers counted as missing.
  assert.equal(rejected({ ...genuine, AppKey: '' }).message, 'callback rejected: the AppKey header is missing');
  assert.equal(rejected({ ...genuine, CurTime: 'soon', CheckSum: sha1(SECRET + bodyMd5 + 'soon') }).message,
    'callback rejected: CurTime is not a whole number of milliseconds');
  assert.equal(rejected(genuine, body, { now: now + 10 * 60 * 1000 }).message,
    'callback rejected: CurTime is 601000 ms away from now, more than the tolerated 300000 ms');
  verifyYunxinCallback(credentials, genuine, body, { now: now + 10 * 60 * 1000, toleranceMs: 11 * 60 * 1000 });
});

test('signYunxinCallback signs as Yunxin does: what verifyYunxinCallback (and node:crypto) accept', () => {
  const body = '{"eventType":"6","fromAccount":"alice","body":"网易"}';
  const now = 1_700_000_000_456;
  const headers = signYunxinCallback(credentials, body, { now });
  const bodyMd5 = md5(new TextEncoder().encode(body));
  assert.deepEqual(headers, {
    AppKey: 'app-key',
    CurTime: String(now),
    MD5: bodyMd5,
    CheckSum: sha1(SECRET + bodyMd5 + String(now)),
  });
  assert.deepEqual(verifyYunxinCallback(credentials, headers, new TextEncoder().encode(body), { now }), JSON.parse(body));
  assert.deepEqual(verifyYunxinCallback(credentials, new Headers(signYunxinCallback(credentials, body)), body), JSON.parse(body));
  assert.ok(!JSON.stringify(headers).includes(SECRET), 'the app secret leaked');
  // Another secret's signature, or a body changed after signing, is refused.
  assertYunxinError(() => verifyYunxinCallback({ ...credentials, appSecret: 'other' }, headers, body, { now }), { code: 'callback' });
  assertYunxinError(() => verifyYunxinCallback(credentials, headers, body.replace('alice', 'mallory'), { now }), { code: 'callback' });
  // A genuine body that is not JSON: the signature holds, the body does not parse.
  const notJson = 'eventType=1';
  assertYunxinError(() => verifyYunxinCallback(credentials, signYunxinCallback(credentials, notJson), notJson), { code: 'json', field: 'body' });
  assertYunxinError(() => signYunxinCallback(credentials, 42), { code: 'invalid', field: 'body' });
  assertYunxinError(() => signYunxinCallback({ appKey: 'k' }, '{}'), { code: 'missing', field: 'credentials.appSecret' });
});
