// Endpoint failover (YUNXIN_BASE_URLS): the built relay in workerd against
// two emulators standing for Yunxin's two endpoints. When the first refuses
// connections or answers 502, every receiver is delivered once through the
// second, under the trace id the first saw; once the first answers again
// and its cooldown is over, traffic returns to it.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventStatus, eventually, notification, postEvent, request, startRelay } from './harness.mjs';

const TOKEN = 'failover-status-token';
const FAST = {
  STATUS_TOKEN: TOKEN,
  RETRY_SCHEDULE_SECS: '1,1,1,1',
  YUNXIN_RATE_PER_MINUTE: '6000',
  UPSTREAM_TIMEOUT_MS: '2000',
  // Long enough that an avoided endpoint stays avoided for the whole test.
  ENDPOINT_COOLDOWN_SECS: '60',
};

let first;
let second;
let refusedUrl;

before(async () => {
  [first, second] = await Promise.all([
    startEmulator({ apps: { [APP_KEY]: APP_SECRET } }),
    startEmulator({ apps: { [APP_KEY]: APP_SECRET } }),
  ]);
  refusedUrl = `http://127.0.0.1:${await closedPort()}`;
});
after(async () => {
  await first?.close();
  await second?.close();
});
beforeEach(() => {
  first.reset();
  second.reset();
});

/** A loopback port nothing listens on: one the system just handed out and took back. */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts a relay over `urls` (first to last) for one test and stops it after. */
async function relayFor(t, urls, bindings = {}) {
  const relay = await startRelay({ YUNXIN_BASE_URLS: urls.join(','), ...FAST, ...bindings });
  t.after(() => relay.close());
  return relay;
}

/** Each endpoint's line in GET /v1/stats (the index's view), by base URL. */
async function endpointHealth(relay) {
  const { status, json } = await request(`${relay.url}/v1/stats`, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(status, 200);
  return Object.fromEntries(json.endpoints.map((e) => [e.base_url, e]));
}

async function settled(relay, id) {
  return eventually(
    async () => {
      const { json } = await eventStatus(relay.url, id, { token: TOKEN });
      return json.state && json.state !== 'pending' ? json : null;
    },
    { ms: 20_000, what: `event ${id} to settle` },
  );
}

/** Receiver → deliveries, over both emulators. */
function deliveryCounts() {
  const counts = new Map();
  for (const d of [...first.deliveries(), ...second.deliveries()]) counts.set(d.receiverId, (counts.get(d.receiverId) ?? 0) + 1);
  return counts;
}

function assertEachDeliveredOnce(receivers) {
  const counts = deliveryCounts();
  assert.equal(counts.size, receivers.length);
  for (const id of receivers) assert.equal(counts.get(id), 1, id);
}

/** The relay's log lines about `url`'s health: `{ endpoint, state, after }`. */
function healthLines(relay, url) {
  return relay.logs
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((l) => l.endpoint === url);
}

test('the first endpoint refuses connections: every receiver once, through the second', async (t) => {
  const relay = await relayFor(t, [refusedUrl, second.url]);

  // Queued: the three calls' first attempts meet the refusal, their retries go to the second.
  const queued = notification(1200, { prefix: 'q' });
  const accepted = await postEvent(relay.url, queued, { wait: false });
  assert.equal(accepted.status, 202, accepted.text);
  const status = await settled(relay, accepted.id);
  assert.equal(status.state, 'delivered');
  assert.equal(status.delivered.length, 1200);

  // Synchronous: the first endpoint is avoided now, the call goes straight to the second.
  const sync = await postEvent(relay.url, notification(3, { prefix: 's' }));
  assert.equal(sync.status, 200, sync.text);
  assert.equal(sync.json.delivered.length, 3);

  assertEachDeliveredOnce([...queued.receiver_ids, 's0', 's1', 's2']);
  assert.equal(second.requests().length, 4, 'three queued calls and one synchronous one, none lost');
  assert.ok(second.requests().every((r) => r.httpStatus === 200 && r.code === 200));
  // Avoided once: no later attempt went to it (another failure would have avoided it again).
  const lines = healthLines(relay, refusedUrl);
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0].state, 'avoided');
});

test('the first endpoint answers 502: every receiver once, through the second, under the same trace id', async (t) => {
  const relay = await relayFor(t, [first.url, second.url]);
  first.injectFaults({ kind: 'http502' });

  // Synchronous (Prefer: wait): the 502, then the quick retry on the second.
  const sync = await postEvent(relay.url, notification(3));
  assert.equal(sync.status, 200, sync.text);
  assert.deepEqual(sync.json.failed, []);
  assert.equal(sync.json.delivered.length, 3);
  const [failed] = first.requests();
  assert.equal(first.requests().length, 1);
  assert.equal(failed.httpStatus, 502);
  const [retried] = second.requests();
  assert.equal(second.requests().length, 1);
  assert.equal(retried.traceId, failed.traceId, 'the retry on the second endpoint keeps the trace id');
  assert.equal(retried.code, 200);

  // Queued, while the first is avoided: nothing more reaches it.
  const queued = notification(600, { prefix: 'q' });
  const accepted = await postEvent(relay.url, queued, { wait: false });
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal((await settled(relay, accepted.id)).state, 'delivered');
  assert.equal(first.requests().length, 1);
  assert.equal(first.deliveries().length, 0);
  assertEachDeliveredOnce([...notification(3).receiver_ids, ...queued.receiver_ids]);
  assert.deepEqual(
    healthLines(relay, first.url).map((l) => [l.state, l.after]),
    [['avoided', 'HTTP 502 from upstream']],
  );
});

test('a dead first endpoint and 502s from the second until the calls give up: nothing unknown, and a replay delivers each receiver once', async (t) => {
  // A short cooldown: the dead endpoint is tried again and again. workerd
  // reports its refusal as "Network connection lost.", the same words as an
  // answer lost after sending; the relay must still know nothing went out.
  const relay = await relayFor(t, [refusedUrl, second.url], { ENDPOINT_COOLDOWN_SECS: '1', RETRY_SCHEDULE_SECS: '1,1,1' });
  second.injectFaults({ kind: 'http502' });

  const queued = notification(600, { prefix: 'dead' }); // two calls
  const accepted = await postEvent(relay.url, queued, { wait: false });
  assert.equal(accepted.status, 202, accepted.text);
  const given = await settled(relay, accepted.id);
  assert.deepEqual(given.unknown, [], 'a connection never made leaves nothing unknown');
  assert.equal(given.failed.length, 600);
  assert.ok(given.failed.every((f) => f.retryable), JSON.stringify(given.failed[0]));
  assert.equal(second.deliveries().length, 0);
  const refusals = healthLines(relay, refusedUrl).filter((l) => l.state === 'avoided');
  assert.ok(refusals.length >= 1, 'the dead endpoint was tried');
  assert.ok(refusals.every((l) => /connection refused/.test(l.after)), JSON.stringify(refusals));

  second.clearFaults();
  const replay = await request(`${relay.url}/v1/events/${accepted.id}/retry`, {
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: '{"unknown": true}',
  });
  assert.equal(replay.status, 202, replay.text);
  assert.equal(replay.json.retried_receivers, 600);
  const done = await settled(relay, accepted.id);
  assert.equal(done.state, 'delivered', JSON.stringify(done.failed?.[0]));
  assert.deepEqual(done.unknown, []);
  assertEachDeliveredOnce(queued.receiver_ids);
});

test('the first endpoint recovers: after its cooldown, traffic returns to it', async (t) => {
  const cooldownMs = 2000;
  const relay = await relayFor(t, [first.url, second.url], { ENDPOINT_COOLDOWN_SECS: String(cooldownMs / 1000) });
  first.injectFaults({ kind: 'http502', count: 1 });

  const sentAt = Date.now(); // before the failure, so before its cooldown starts
  const failedOver = await postEvent(relay.url, notification(2, { prefix: 'a' }));
  const avoidedAt = Date.now(); // after it
  assert.equal(failedOver.status, 200, failedOver.text);
  assert.deepEqual([first.requests().length, second.requests().length], [1, 1]);
  const down = await eventually(async () => {
    const health = await endpointHealth(relay);
    return health[first.url] && health[second.url] ? health : null;
  }, { ms: 5000, what: 'both endpoints in the stats' });
  assert.deepEqual(
    [down[first.url].healthy, down[first.url].failures, down[second.url].healthy],
    [false, 1, true],
  );
  // Within the cooldown the first is not tried, though it would answer now.
  const meanwhile = await postEvent(relay.url, notification(2, { prefix: 'b' }));
  assert.equal(meanwhile.status, 200, meanwhile.text);
  assert.ok(Date.now() - sentAt < cooldownMs, 'the second event was sent within the cooldown');
  assert.deepEqual([first.requests().length, second.requests().length], [1, 2]);

  await new Promise((resolve) => setTimeout(resolve, cooldownMs - (Date.now() - avoidedAt) + 300));
  const back = await postEvent(relay.url, notification(2, { prefix: 'c' }));
  assert.equal(back.status, 200, back.text);
  const queued = await postEvent(relay.url, notification(2, { prefix: 'd' }), { wait: false });
  assert.equal((await settled(relay, queued.id)).state, 'delivered');

  assert.deepEqual([first.requests().length, second.requests().length], [3, 2]);
  assert.deepEqual(
    first.deliveries().map((d) => d.receiverId),
    ['c0', 'c1', 'd0', 'd1'],
  );
  assertEachDeliveredOnce(['a0', 'a1', 'b0', 'b1', 'c0', 'c1', 'd0', 'd1']);
  assert.deepEqual(
    healthLines(relay, first.url).map((l) => l.state),
    ['avoided', 'healthy'],
  );
  const up = await eventually(async () => {
    const health = await endpointHealth(relay);
    return health[first.url]?.calls === 3 ? health : null;
  }, { ms: 5000, what: 'the recovered endpoint in the stats' });
  assert.deepEqual([up[first.url].healthy, up[first.url].failures, up[second.url].calls], [true, 1, 2]);
});

describe('configuration', () => {
  const broken = [
    [{ YUNXIN_BASE_URLS: 'https://a.example', YUNXIN_BASE_URL: 'https://a.example' }, ['YUNXIN_BASE_URLS', 'YUNXIN_BASE_URL:']],
    [{ YUNXIN_BASE_URLS: 'https://a.example,ftp://hidden.example' }, ['entry 2', 'http(s)']],
    [{ YUNXIN_BASE_URLS: 'https://a.example,,https://b.example' }, ['entry 2']],
  ];
  test('both bindings, or a bad URL in the list: 500 naming them, never the value', async () => {
    for (const [bindings, mentions] of broken) {
      const relay = await startRelay({ ...FAST, ...bindings });
      try {
        const result = await postEvent(relay.url, notification(1));
        assert.equal(result.status, 500, result.text);
        assert.equal(result.json.error.code, 'misconfigured');
        assert.equal(result.json.error.field, 'YUNXIN_BASE_URLS');
        for (const mention of mentions) assert.ok(result.json.error.message.includes(mention), result.json.error.message);
        assert.ok(!result.text.includes('hidden.example'), result.text);
      } finally {
        await relay.close();
      }
    }
    assert.equal(first.requests().length + second.requests().length, 0);
  });
});
