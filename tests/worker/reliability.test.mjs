// Reliability: bursts of queued events through the built relay in workerd,
// delivered to the emulator under injected faults (a spell of 416, then about
// 30 % of calls failing), while the emulator enforces Yunxin's call quota at
// the relay's own YUNXIN_RATE_PER_MINUTE: a sliding 60 s window, 416 and a
// 60 s block for the app over it. Every receiver must be notified exactly
// once, and the relay's pacer must never trip the quota.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../emulator/index.mjs';
import { runBurst } from './burst.mjs';
import { APP_KEY, APP_SECRET, startRelay } from './harness.mjs';

const TOKEN = 'status-token-for-tests';
const FAST = {
  STATUS_TOKEN: TOKEN,
  RETRY_SCHEDULE_SECS: '1,1,1,1,1,1,1,1',
  RATE_LIMIT_BACKOFF_SECS: '1',
  UPSTREAM_TIMEOUT_MS: '2000',
};

let emu;
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, seed: 7 });
});
after(() => emu?.close());
beforeEach(() => emu.setQuota(null));

/** A relay paced at `perMinute`, and the emulator enforcing the same quota. */
async function relayAt(t, perMinute) {
  emu.setQuota({ perMinute, blockSeconds: 60, window: 'sliding' });
  const relay = await startRelay({ YUNXIN_BASE_URL: emu.url, ...FAST, YUNXIN_RATE_PER_MINUTE: String(perMinute) });
  t.after(() => relay.close());
  return relay;
}

/** Exactly once, and within the quota: the figures a user of the relay would check. */
function assertReliable(figures, { events, perMinute }) {
  assert.equal(figures.delivered_events, events);
  assert.ok(figures.faults_injected >= 20, `faults were injected (${figures.faults_injected})`);
  assert.ok(figures.faults_by_kind.code416 >= 1, 'the injected spell of 416 happened');
  assert.deepEqual({ duplicates: figures.duplicates, lost: figures.lost }, { duplicates: 0, lost: 0 });
  assert.equal(figures.quota_per_minute, perMinute);
  // The pacer never trips Yunxin's quota: no 416 from it, never more calls in any
  // 60 s than the quota (every signed call counts, retries and replays included).
  assert.deepEqual(
    { quota_416: figures.quota_416, over_quota: figures.over_quota },
    { quota_416: 0, over_quota: 0 },
    `the relay went over ${perMinute} calls/min: ${figures.max_calls_in_60s} calls in one 60 s window, ${figures.quota_416} answered 416 by the quota`,
  );
  assert.ok(figures.max_calls_in_60s <= perMinute);
}

test('50 events × 1,000 receivers at 6,000/min, ~30 % failures and a spell of 416: each receiver notified exactly once', async (t) => {
  const relay = await relayAt(t, 6000);
  const figures = await runBurst({ relay, emu, token: TOKEN });
  t.diagnostic(JSON.stringify(figures));
  assertReliable(figures, { events: 50, perMinute: 6000 });
});

test('at the standard plan\'s 120/min, a burst of more than a minute of calls never trips the quota', async (t) => {
  // 48 events of 1,000 receivers: 96 calls and their retries, more than 120 calls in
  // all, so a pacer that let them through faster than 120 in any 60 s would be caught.
  // The pacer spaces slots 2 % wider than 500 ms: the run takes about 80 s.
  const perMinute = 120;
  const relay = await relayAt(t, perMinute);
  const figures = await runBurst({ relay, emu, token: TOKEN, events: 48, receivers: 1000 });
  t.diagnostic(JSON.stringify(figures));
  assert.ok(figures.upstream_calls > perMinute, `the burst can go over the quota (${figures.upstream_calls} calls)`);
  assertReliable(figures, { events: 48, perMinute });
});
