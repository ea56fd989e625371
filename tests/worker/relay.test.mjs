// The relay end to end: the built Worker in real workerd (Miniflare), the
// Yunxin emulator on loopback, and Standard Webhooks signed with node:crypto.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, WEBHOOK_SECRET, eventStatus, eventually, notification, postEvent, sign, startRelay } from './harness.mjs';

const UPSTREAM_TIMEOUT_MS = 1000;
const TOKEN = 'relay-status-token';
// The synchronous path's bounds, and the queue's schedule after them: a
// retry due after the deadline is the queue's (tests then wait for it).
const SYNC_DEADLINE_MS = 6000;
const RETRY_SCHEDULE_SECS = '6,1,1';
const RATE_LIMIT_BACKOFF_SECS = 6;
const OTHER_SECRET = `whsec_${Buffer.from('the-next-webhook-key').toString('base64')}`;

let emu;
let relay;

before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    SYNC_DEADLINE_MS: String(SYNC_DEADLINE_MS),
    SYNC_MAX_CALLS: '30', // 10,000 receivers (20 calls) within one request
    RETRY_SCHEDULE_SECS,
    RATE_LIMIT_BACKOFF_SECS: String(RATE_LIMIT_BACKOFF_SECS),
    YUNXIN_RATE_PER_MINUTE: '6000',
    STATUS_TOKEN: TOKEN,
    // Rotation: the relay accepts both the current and the next secret.
    WEBHOOK_SECRET: `${WEBHOOK_SECRET} ${OTHER_SECRET}`,
  });
});
after(async () => {
  await relay?.close();
  await emu?.close();
});
beforeEach(() => emu.reset());

/** Waits until the queue has finished an event the synchronous path handed over. */
async function settledByQueue(id) {
  return eventually(
    async () => {
      const { json } = await eventStatus(relay.url, id, { token: TOKEN });
      return json.state !== 'pending' ? json : null;
    },
    { ms: 30_000, what: `event ${id} finished by the queue` },
  );
}

/** Receiver id → deliveries, from the emulator's record. */
function deliveryCounts() {
  const counts = new Map();
  for (const d of emu.deliveries()) counts.set(d.receiverId, (counts.get(d.receiverId) ?? 0) + 1);
  return counts;
}

function assertEachDeliveredOnce(n, prefix = 'user') {
  const counts = deliveryCounts();
  assert.equal(counts.size, n);
  for (let i = 0; i < n; i++) assert.equal(counts.get(`${prefix}${i}`), 1, `${prefix}${i}`);
}

test('GET /healthz answers 200', async () => {
  const response = await fetch(`${relay.url}/healthz`);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: 'ok' });
});

describe('happy path', () => {
  for (const n of [1, 500, 501, 10_000]) {
    test(`${n} receivers: each delivered exactly once, every CheckSum verified`, async () => {
      const result = await postEvent(relay.url, notification(n));
      assert.equal(result.status, 200, result.text);
      assert.equal(result.json.event_id, result.id);
      assert.equal(result.json.requests, Math.ceil(n / 500));
      assert.equal(result.json.delivered.length, n);
      assert.deepEqual(result.json.failed, []);
      assert.deepEqual(result.json.not_attempted, []);
      assertEachDeliveredOnce(n);
      const calls = emu.requests();
      assert.equal(calls.length, Math.ceil(n / 500));
      assert.ok(calls.every((c) => c.checksumOk === true && c.code === 200 && c.receiverCount <= 500));
      assert.equal(new Set(calls.map((c) => c.traceId)).size, calls.length, 'one trace id per call');
    });
  }

  test('duplicate receivers (by case) are notified once', async () => {
    const result = await postEvent(relay.url, { sender_id: 'bot', content: 'x', receiver_ids: ['Ann', 'ann', 'ANN', 'bo'] });
    assert.equal(result.status, 200, result.text);
    assert.deepEqual(result.json.delivered, ['Ann', 'bo']);
    assert.equal(emu.deliveries().length, 2);
  });

  test('content given as a JSON object is sent as its JSON text', async () => {
    const result = await postEvent(relay.url, { sender_id: 'bot', receiver_ids: ['u1'], content: { deploy: 'ok', n: 1 } });
    assert.equal(result.status, 200, result.text);
    assert.equal(emu.deliveries()[0].content, '{"deploy":"ok","n":1}');
  });
});

test('partial failure: unknown accounts come back in failed with 102404', async () => {
  const n = { sender_id: 'bot', content: 'x', receiver_ids: ['user1', 'ghost-a', 'user2', 'ghost-b'] };
  const result = await postEvent(relay.url, n);
  assert.equal(result.status, 200, 'nothing retryable is left');
  assert.deepEqual(result.json.delivered, ['user1', 'user2']);
  assert.deepEqual(
    result.json.failed.map((f) => [f.account_id, f.error_code, f.retryable]),
    [
      ['ghost-a', 102404, false],
      ['ghost-b', 102404, false],
    ],
  );
  assert.ok(result.json.failed.every((f) => typeof f.error_msg === 'string' && f.error_msg.length > 0));
});

describe('bad input is rejected and nothing is forwarded', () => {
  // An unsigned request, in the shape postEvent answers.
  const raw = async (pending) => {
    const response = await pending;
    return { status: response.status, headers: response.headers, json: await response.json() };
  };
  const cases = [
    {
      name: 'unknown path → 404',
      run: () => raw(fetch(`${relay.url}/v1/nope`, { method: 'POST' })),
      status: 404,
      code: 'not_found',
    },
    {
      name: 'wrong method → 405 with Allow',
      run: () => raw(fetch(`${relay.url}/v1/notifications`)),
      status: 405,
      code: 'method_not_allowed',
      check: (response) => assert.equal(response.headers.get('allow'), 'POST'),
    },
    {
      name: 'not JSON → 415',
      run: () => postEvent(relay.url, null, { body: 'hello', headers: { 'content-type': 'text/plain' } }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'body over 1 MiB → 413',
      run: () => postEvent(relay.url, { ...notification(1), content: 'x'.repeat(1024 * 1024) }, { raw: true }),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'malformed JSON → 400, saying where',
      run: () => postEvent(relay.url, null, { body: '{"sender_id": "bot",\n "receiver_ids": [' }),
      status: 400,
      code: 'malformed_json',
      message: /line 2 column/,
    },
    {
      name: 'content over 4096 characters → 422 naming field and limit',
      run: () => postEvent(relay.url, notification(2, { content: '通'.repeat(4097) })),
      status: 422,
      code: 'too_long',
      field: 'content',
      limit: 4096,
      message: /at most 4096 characters, got 4097/,
    },
    {
      name: 'receiver id over 32 characters → 422 naming the index',
      run: () => postEvent(relay.url, { sender_id: 'bot', content: 'x', receiver_ids: ['ok', 'x'.repeat(33)] }),
      status: 422,
      code: 'too_long',
      field: 'receiver_ids[1]',
      limit: 32,
    },
    {
      name: 'more than MAX_RECEIVERS_PER_EVENT receivers → 422',
      run: () => postEvent(relay.url, notification(10_001)),
      status: 422,
      code: 'too_many',
      field: 'receiver_ids',
      limit: 10_000,
    },
    {
      name: 'no receivers → 422',
      run: () => postEvent(relay.url, notification(0)),
      status: 422,
      code: 'too_few',
      field: 'receiver_ids',
    },
    {
      name: 'missing sender → 422',
      run: () => postEvent(relay.url, { receiver_ids: ['u1'], content: 'x' }),
      status: 422,
      code: 'missing',
      field: 'sender_id',
    },
    {
      name: 'unknown field → 422',
      run: () => postEvent(relay.url, { ...notification(1), recevier_ids: ['u2'] }),
      status: 422,
      code: 'invalid_schema',
      message: /unknown field `recevier_ids`/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const response = await c.run();
      const { json } = response;
      assert.equal(response.status, c.status, JSON.stringify(json));
      assert.equal(json.error.code, c.code);
      assert.equal(typeof json.error.message, 'string');
      if (c.field) assert.equal(json.error.field, c.field);
      if (c.limit) assert.equal(json.error.limit, c.limit);
      if (c.message) assert.match(json.error.message, c.message);
      c.check?.(response);
      assert.equal(emu.requests().length, 0, 'nothing forwarded');
    });
  }
});

describe('webhook signatures', () => {
  const rejected = async (overrides, message) => {
    const result = await postEvent(relay.url, notification(3), overrides);
    assert.equal(result.status, 401, result.text);
    assert.equal(result.json.error.code, 'unauthorized');
    assert.match(result.json.error.message, message);
    assert.equal(emu.requests().length, 0, 'nothing forwarded');
  };
  const wrong = `whsec_${Buffer.from('not-our-key').toString('base64')}`;

  test('wrong secret', () => rejected({ secret: wrong }, /no `webhook-signature` matches/));
  test('tampered body', () =>
    rejected({ body: JSON.stringify(notification(4)), signedBody: JSON.stringify(notification(3)) }, /matches/));
  test('stale timestamp', () => rejected({ skewSeconds: -301 }, /in the past/));
  test('future timestamp', () => rejected({ skewSeconds: 301 }, /in the future/));
  for (const header of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    test(`missing ${header}`, () => rejected({ headers: { [header]: undefined } }, new RegExp(`missing \`${header}\``)));
  }
  test('garbage signature', () => rejected({ headers: { 'webhook-signature': 'v1,!!!' } }, /matches/));

  test('rotation: either configured secret is accepted, and a list of signatures', async () => {
    for (const secret of [WEBHOOK_SECRET, OTHER_SECRET]) {
      const result = await postEvent(relay.url, notification(1), { secret });
      assert.equal(result.status, 200, result.text);
    }
    const body = JSON.stringify(notification(1));
    const id = 'evt_multi';
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signatures = `${sign(body, { secret: wrong, id, timestamp })} ${sign(body, { secret: OTHER_SECRET, id, timestamp })}`;
    const result = await postEvent(relay.url, null, { body, id, headers: { 'webhook-timestamp': timestamp, 'webhook-signature': signatures } });
    assert.equal(result.status, 200, result.text);
  });
});

describe('upstream faults', () => {
  test('a transient 502 is retried with the same trace id and delivered once', async () => {
    emu.injectFaults({ kind: 'http502', count: 1 });
    const result = await postEvent(relay.url, notification(3));
    assert.equal(result.status, 200, result.text);
    assert.equal(result.json.delivered.length, 3);
    const calls = emu.requests();
    assert.equal(calls.length, 2);
    assert.equal(calls[0].httpStatus, 502);
    assert.equal(calls[0].traceId, calls[1].traceId);
    assertEachDeliveredOnce(3);
  });

  test('code 500 twice, then success: two retries suffice', async () => {
    emu.injectFaults({ kind: 'code500', count: 2 });
    const result = await postEvent(relay.url, notification(2));
    assert.equal(result.status, 200, result.text);
    assert.equal(emu.requests().length, 3);
    assertEachDeliveredOnce(2);
  });

  test('a connection dropped after delivery: the retry is de-duplicated upstream', async () => {
    emu.injectFaults({ kind: 'drop-after', count: 1 });
    const result = await postEvent(relay.url, notification(5));
    assert.equal(result.status, 200, result.text);
    assert.equal(result.json.delivered.length, 5);
    assert.equal(emu.requests().at(-1).replayed, true);
    assertEachDeliveredOnce(5);
  });

  test('a persistent 502: three quick attempts, then 202 pending with Retry-After; the queue delivers', async () => {
    emu.injectFaults({ kind: 'http502', count: 3 });
    const result = await postEvent(relay.url, notification(2));
    assert.equal(result.status, 202, result.text);
    assert.equal(result.json.state, 'pending');
    assert.equal(result.json.status_url, `/v1/events/${result.id}`);
    assert.ok(Number(result.headers.get('retry-after')) >= 4, result.headers.get('retry-after'));
    assert.deepEqual(
      result.json.pending.map((p) => [p.account_id, p.attempts, p.last_error]),
      [
        ['user0', 3, 'HTTP 502 from upstream'],
        ['user1', 3, 'HTTP 502 from upstream'],
      ],
    );
    assert.equal(emu.requests().length, 3);
    assert.equal(emu.deliveries().length, 0);
    const settled = await settledByQueue(result.id);
    assert.equal(settled.state, 'delivered');
    assertEachDeliveredOnce(2);
  });

  test('416 is left to the queue: 202 with Retry-After ≥ the rate-limit wait, no other call during the block, all delivered after it', async () => {
    emu.injectFaults({ kind: 'code416', count: 1 });
    const result = await postEvent(relay.url, notification(501));
    assert.equal(result.status, 202, result.text);
    assert.ok(Number(result.headers.get('retry-after')) >= RATE_LIMIT_BACKOFF_SECS - 1);
    const { delivered, pending } = result.json;
    assert.equal(delivered.length + pending.length, 501);
    // The 416 blocks the whole app: the event's other call, due at the
    // same time, waits for the block's end too (unless it left first).
    const limited = pending.filter((p) => p.last_error === 'frequency control');
    assert.ok(limited.length === 500 || limited.length === 1, `one call's receivers: ${limited.length}`);
    const calls = emu.requests();
    assert.equal(calls.filter((c) => c.code === 416).length, 1, 'no quick retry of the rate-limited call');
    // At most the other call, if it left before the 416 came back.
    assert.ok(calls.length <= 2, `${calls.length} calls`);
    assert.equal((await settledByQueue(result.id)).state, 'delivered');
    assertEachDeliveredOnce(501);
  });

  test('a slow upstream hits the per-attempt timeout: pending, never failed, and notified once', async () => {
    emu.injectFaults({ kind: 'slow', delayMs: UPSTREAM_TIMEOUT_MS + 1500, count: 3 });
    const result = await postEvent(relay.url, notification(1));
    assert.equal(result.status, 202, result.text);
    // The request went out and its answer was lost: Yunxin may have notified
    // user0, so it is retried with the same trace id, never reported failed.
    assert.deepEqual(result.json.failed, []);
    assert.equal(result.json.pending[0].account_id, 'user0');
    assert.match(
      result.json.pending[0].last_error,
      new RegExp(`^request sent, answer lost: no answer within ${UPSTREAM_TIMEOUT_MS} ms`),
    );
    assert.equal((await settledByQueue(result.id)).state, 'delivered');
    assertEachDeliveredOnce(1);
  });

  test('receivers failed with a retryable per-receiver code are retried alone, under a new trace id', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['user3', 'user7'], count: 2 });
    const result = await postEvent(relay.url, notification(10));
    assert.equal(result.status, 200, result.text);
    assert.equal(result.json.delivered.length, 10);
    assert.deepEqual([result.json.failed, result.json.unknown], [[], []]);
    const calls = emu.requests();
    assert.equal(calls.length, 2);
    assert.equal(calls[1].receiverCount, 2, 'only the two failed receivers go again');
    assert.notEqual(calls[0].traceId, calls[1].traceId);
    assertEachDeliveredOnce(10);
  });

  test('a slow answer within the timeout is fine', async () => {
    emu.injectFaults({ kind: 'slow', delayMs: 200, count: 1 });
    const result = await postEvent(relay.url, notification(1));
    assert.equal(result.status, 200, result.text);
    assertEachDeliveredOnce(1);
  });
});

test('one JSON log line per event, without secrets', async () => {
  const before = relay.logs.length;
  const ok = await postEvent(relay.url, notification(2));
  const bad = await postEvent(relay.url, notification(2), { skewSeconds: -999 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const lines = relay.logs.slice(before).filter((l) => l.startsWith('{'));
  const parsed = lines.map((l) => JSON.parse(l));
  const okLine = parsed.find((l) => l.event_id === ok.id);
  assert.deepEqual(
    { status: okLine.status, requests: okLine.requests, delivered: okLine.delivered, failed: okLine.failed },
    { status: 200, requests: 1, delivered: 2, failed: 0 },
  );
  assert.equal(typeof okLine.duration_ms, 'number');
  // An unauthenticated request's id is anybody's text: it is not logged.
  assert.equal(bad.status, 401);
  assert.ok(!relay.logs.slice(before).some((l) => l.includes(bad.id)), 'the unauthenticated id is not logged');
  const badLine = parsed.find((l) => l.status === 401);
  assert.deepEqual({ error: badLine.error, event_id: badLine.event_id }, { error: 'unauthorized', event_id: undefined });
  const everything = relay.logs.join('\n');
  for (const secret of [APP_SECRET, WEBHOOK_SECRET, WEBHOOK_SECRET.slice(6)]) assert.ok(!everything.includes(secret));
});

describe('configuration', () => {
  const broken = [
    [{ WEBHOOK_SECRET: undefined }, 'WEBHOOK_SECRET', 'is not set'],
    [{ YUNXIN_APP_SECRET: undefined }, 'YUNXIN_APP_SECRET', 'is not set'],
    [{ WEBHOOK_SECRET: 'plain-secret-value' }, 'WEBHOOK_SECRET', 'does not start with `whsec_`'],
    [{ YUNXIN_BASE_URL: 'ftp://example' }, 'YUNXIN_BASE_URL', 'http(s)'],
    [{ MAX_RECEIVERS_PER_EVENT: 'lots' }, 'MAX_RECEIVERS_PER_EVENT', 'whole number'],
  ];
  test('a missing or malformed binding answers 500 naming it, never its value', async () => {
    for (const [bindings, name, problem] of broken) {
      const misconfigured = await startRelay({ YUNXIN_BASE_URL: emu.url, ...bindings });
      try {
        const result = await postEvent(misconfigured.url, notification(1));
        assert.equal(result.status, 500, result.text);
        assert.equal(result.json.error.code, 'misconfigured');
        assert.equal(result.json.error.field, name);
        assert.ok(result.json.error.message.includes(problem), result.json.error.message);
        assert.ok(!result.text.includes('plain-secret-value') && !result.text.includes(APP_SECRET));
      } finally {
        await misconfigured.close();
      }
    }
    assert.equal(emu.requests().length, 0);
  });
});
