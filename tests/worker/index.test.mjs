// The event index behind GET /v1/events and GET /v1/stats: every accepted
// event listed newest first (filters, pages), each attempt in its event's
// timeline, and counters that agree with the emulator's record.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, notification, postEvent, request, startRelay } from './harness.mjs';

const TOKEN = 'index-status-token';
const auth = { authorization: `Bearer ${TOKEN}` };

let emu;
let relay;
const ids = { failed: [], delivered: [] };
// The data points the index writes to its Analytics Engine dataset. Locally
// Miniflare's dataset drops them, so ANALYTICS is bound to a stand-in (a
// wrapped binding) that posts each one to this process.
const dataPoints = [];
const analytics = {
  options: { wrappedBindings: { ANALYTICS: { scriptName: 'analytics-recorder' } } },
  workers: [
    {
      name: 'analytics-recorder',
      modules: true,
      script: `export default function (env) {
        return { writeDataPoint(point) { env.RECORD.fetch('http://record/', { method: 'POST', body: JSON.stringify(point) }); } };
      }`,
      serviceBindings: {
        RECORD: async (req) => {
          dataPoints.push(await req.json());
          return new Response('ok');
        },
      },
    },
  ],
};
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay(
    {
      YUNXIN_BASE_URL: emu.url,
      STATUS_TOKEN: TOKEN,
      RETRY_SCHEDULE_SECS: '1',
      YUNXIN_RATE_PER_MINUTE: '6000',
      ROUTES: '{}',
    },
    analytics,
  );
  // A burst: 4 events delivered, 3 with a receiver that keeps failing
  // (synchronous and queued), and requests refused before and after routing.
  emu.injectFaults({ kind: 'receiver-code', code: 102503, prefix: 'busy' });
  for (let i = 0; i < 4; i++) ids.delivered.push((await postEvent(relay.url, notification(3, { prefix: `ok${i}_` }))).id);
  for (let i = 0; i < 3; i++) {
    const body = notification(2, { prefix: `mix${i}_` });
    body.receiver_ids.push(`busy${i}`);
    ids.failed.push((await postEvent(relay.url, body, { wait: i === 0 })).id);
  }
  assert.equal((await postEvent(relay.url, notification(1), { secret: `whsec_${Buffer.from('wrong').toString('base64')}` })).status, 401);
  assert.equal((await request(`${relay.url}/v1/hooks/no-such-route`, { headers: { 'content-type': 'application/json' }, body: '{}' })).status, 404);
  // The index hears of intakes in batches, up to a second later (DEFER_MS).
  await eventually(
    async () => {
      const [{ json: pending }, { json: all }] = await Promise.all([list('?state=pending'), list()]);
      return pending.events.length === 0 && all.events.length === 7;
    },
    { ms: 30_000, what: 'every event listed and finished' },
  );
});
after(async () => {
  await relay?.close();
  await emu?.close();
});

function list(query = '', headers = auth) {
  return request(`${relay.url}/v1/events${query}`, { method: 'GET', headers });
}

describe('GET /v1/events', () => {
  test('every event, newest first, with its state and receiver counts', async () => {
    const { status, json } = await list();
    assert.equal(status, 200);
    const all = [...ids.delivered, ...ids.failed];
    assert.deepEqual(json.events.map((e) => e.event_id), all.reverse());
    const failed = json.events.find((e) => e.event_id === ids.failed[1]);
    assert.equal(failed.state, 'completed_with_failures');
    assert.equal(failed.route, null);
    assert.deepEqual(failed.receivers, { total: 3, delivered: 2, failed: 1, unknown: 0, pending: 0 });
    assert.ok(failed.updated_at_ms >= failed.created_at_ms);
    assert.equal(json.next_cursor, null);
  });

  test('filtered by state and route; paged by cursor, each event once', async () => {
    const { json: failed } = await list('?state=completed_with_failures');
    assert.deepEqual(failed.events.map((e) => e.event_id).sort(), [...ids.failed].sort());
    const { json: none } = await list('?route=github-push');
    assert.deepEqual(none.events, []);
    const { json: plain } = await list('?route=-');
    assert.equal(plain.events.length, 7);
    const seen = [];
    let cursor = '';
    for (let pages = 0; pages < 10; pages++) {
      const { json } = await list(`?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.ok(json.events.length <= 3);
      seen.push(...json.events.map((e) => e.event_id));
      if (!json.next_cursor) break;
      cursor = json.next_cursor;
    }
    assert.deepEqual(seen, [...ids.delivered, ...ids.failed].reverse());
  });

  test('bad parameters → 400 naming them; no token → 401', async () => {
    for (const [query, field] of [['?state=lost', 'state'], ['?limit=0', 'limit'], ['?limit=101', 'limit'], ['?limit=x', 'limit']]) {
      const { status, json } = await list(query);
      assert.equal(status, 400, query);
      assert.equal(json.error.field, field);
    }
    assert.equal((await list('', {})).status, 401);
    assert.equal((await list('', { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await request(`${relay.url}/v1/stats`, { method: 'GET' })).status, 401);
  });
});

describe('GET /v1/events/{id}: the attempts timeline', () => {
  test('every attempt, with the trace id Yunxin saw, its outcome and latency', async () => {
    const id = ids.failed[0];
    const { json } = await request(`${relay.url}/v1/events/${id}`, { method: 'GET', headers: auth });
    assert.equal(json.route, null);
    assert.ok(json.attempts.length >= 2, JSON.stringify(json.attempts));
    const seen = new Set(emu.requests().map((r) => r.traceId));
    for (const attempt of json.attempts) {
      assert.ok(seen.has(attempt.trace_id), `${attempt.trace_id} reached the emulator`);
      assert.equal(attempt.outcome, 'partial');
      assert.equal(attempt.code, 200);
      assert.equal(attempt.http_status, 200);
      assert.match(attempt.error, /1 receivers failed \(102503\)/);
      assert.ok(attempt.latency_ms >= 0 && attempt.started_at_ms > 0);
      assert.ok(attempt.endpoint.startsWith(emu.url));
    }
    const numbers = json.attempts.map((a) => a.attempt);
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b));
  });
});

describe('GET /v1/stats', () => {
  test('counters agree with the emulator; calls per minute over the last hour', async () => {
    const { status, json } = await request(`${relay.url}/v1/stats`, { method: 'GET', headers: auth });
    assert.equal(status, 200);
    const counter = (name, labels = {}) =>
      json.counters
        .filter((c) => c.name === name && Object.entries(labels).every(([k, v]) => c.labels[k] === v))
        .reduce((sum, c) => sum + c.value, 0);
    assert.equal(counter('events_accepted', { route: '-' }), 7);
    assert.equal(counter('events_rejected', { route: '-', status: '401' }), 1);
    assert.equal(counter('events_rejected', { route: '(unknown)', status: '404' }), 1, 'an unknown route name is not a label');
    assert.equal(counter('upstream_calls'), emu.requests().length);
    assert.equal(counter('receivers_delivered'), emu.deliveries().length);
    assert.equal(counter('receivers_failed'), 3);
    assert.equal(counter('receivers_failed', { route: '-', code: '102503' }), 3, 'by the code they ended with');
    assert.equal(json.rate_per_minute, 6000);
    assert.equal(json.minutes.length, 60);
    assert.equal(json.minutes.reduce((sum, m) => sum + m.calls, 0), emu.requests().length);
    const latency = json.histograms.find((h) => h.name === 'upstream_latency');
    assert.equal(latency.count, emu.requests().length);
    assert.equal(latency.counts.at(-1), latency.count, 'buckets are cumulative, +Inf holds all');
    assert.ok(json.histograms.some((h) => h.name === 'queue_lag' && h.count >= 2));
  });
});

describe('the Analytics Engine dataset', () => {
  test('gets every counter increment as a data point: the same totals as /v1/stats', async () => {
    const { json } = await request(`${relay.url}/v1/stats`, { method: 'GET', headers: auth });
    const written = new Map();
    for (const point of dataPoints) {
      const [name, labels] = point.blobs;
      assert.deepEqual(point.indexes, [name]);
      written.set(`${name} ${labels}`, (written.get(`${name} ${labels}`) ?? 0) + point.doubles[0]);
    }
    for (const counter of json.counters) {
      const labels = JSON.stringify(Object.fromEntries(Object.entries(counter.labels).sort()));
      assert.equal(written.get(`${counter.name} ${labels}`), counter.value, `${counter.name} ${labels}`);
    }
  });
});

describe('retention (EVENT_RETENTION_DAYS)', () => {
  test('an event unchanged for longer is no longer listed; a bad value is logged and the default kept', async (t) => {
    const retentionMs = 4000;
    const short = await startRelay({
      YUNXIN_BASE_URL: emu.url,
      STATUS_TOKEN: TOKEN,
      EVENT_RETENTION_DAYS: String(retentionMs / 86_400_000),
    });
    t.after(() => short.close());
    const old = await postEvent(short.url, notification(1, { prefix: 'old' }));
    await new Promise((resolve) => setTimeout(resolve, retentionMs + 1000));
    const fresh = await postEvent(short.url, notification(1, { prefix: 'fresh' }));
    const json = await eventually(async () => {
      const { json: page } = await request(`${short.url}/v1/events`, { method: 'GET', headers: auth });
      return page.events.some((e) => e.event_id === fresh.id) ? page : null;
    }, { ms: 5000, what: 'the fresh event listed' });
    assert.deepEqual(json.events.map((e) => e.event_id), [fresh.id]);
    // The event's own record outlives its listing: its status still answers.
    const status = await request(`${short.url}/v1/events/${old.id}`, { method: 'GET', headers: auth });
    assert.equal(status.json.state, 'delivered');
    assert.deepEqual(status.json.attempts, []);

    const logs = [];
    const bad = await startRelay({ YUNXIN_BASE_URL: emu.url, STATUS_TOKEN: TOKEN, EVENT_RETENTION_DAYS: 'soon' }, { onLog: (line) => logs.push(line) });
    t.after(() => bad.close());
    const kept = await postEvent(bad.url, notification(1, { prefix: 'kept' }));
    const listed = await eventually(async () => {
      const { json: page } = await request(`${bad.url}/v1/events`, { method: 'GET', headers: auth });
      return page.events.length ? page : null;
    }, { ms: 5000, what: 'the event listed' });
    assert.deepEqual(listed.events.map((e) => e.event_id), [kept.id]);
    assert.ok(logs.some((line) => line.includes('EVENT_RETENTION_DAYS is not a positive number')), 'the bad value is named in the log');
  });
});
