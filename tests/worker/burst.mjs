// The reliability scenario, shared by the test and scripts/reliability.mjs:
// a burst of signed events, queued (202), delivered under injected faults,
// then counted receiver by receiver from the emulator's record. With a call
// quota set on the emulator (emu.setQuota / startEmulator({ quota })), the
// figures also say whether the relay's pacer ever went over it.
import { eventStatus, eventually, notification, postEvent } from './harness.mjs';

/** Roughly 30 % of calls fail in one of four ways, after a spell of 416. */
export const BURST_FAULTS = [
  { kind: 'code416', count: 8 },
  { kind: 'http502', fraction: 0.08 },
  { kind: 'code500', fraction: 0.08 },
  { kind: 'drop', fraction: 0.08 },
  { kind: 'drop-after', fraction: 0.08 },
];

/**
 * Sends `events` events of `receivers` receivers each to the relay, waits
 * until every event's status has settled, and returns the figures.
 */
export async function runBurst({ relay, emu, token, events = 50, receivers = 1000, faults = BURST_FAULTS, timeoutMs = 180_000 }) {
  emu.reset();
  emu.injectFaults(faults);
  const started = Date.now();
  const accepted = await Promise.all(
    Array.from({ length: events }, (_, e) => postEvent(relay.url, notification(receivers, { prefix: `b${e}-` }), { wait: false })),
  );
  const states = [];
  for (const { id, status } of accepted) {
    if (status !== 202) throw new Error(`event ${id} was answered ${status}, not 202`);
    const settled = await eventually(
      async () => {
        const { json } = await eventStatus(relay.url, id, { token });
        return json.state && json.state !== 'pending' ? json : null;
      },
      { ms: timeoutMs, what: `event ${id} to settle` },
    );
    states.push(settled.state);
  }
  const durationMs = Date.now() - started;

  const counts = new Map();
  for (const d of emu.deliveries()) counts.set(d.receiverId, (counts.get(d.receiverId) ?? 0) + 1);
  let duplicates = 0;
  let lost = 0;
  for (let e = 0; e < events; e++) {
    for (let i = 0; i < receivers; i++) {
      const n = counts.get(`b${e}-${i}`) ?? 0;
      if (n === 0) lost++;
      if (n > 1) duplicates += n - 1;
    }
  }
  const calls = emu.requests();
  const faultsByKind = {};
  for (const c of calls) if (c.fault) faultsByKind[c.fault] = (faultsByKind[c.fault] ?? 0) + 1;
  emu.clearFaults();
  const quota = emu.quotaStats();
  return {
    events,
    receivers: events * receivers,
    delivered_events: states.filter((s) => s === 'delivered').length,
    upstream_calls: calls.length,
    faults_injected: Object.values(faultsByKind).reduce((a, b) => a + b, 0),
    faults_by_kind: faultsByKind,
    replayed_by_trace_id: calls.filter((c) => c.replayed).length,
    duplicates,
    lost,
    duration_ms: durationMs,
    // The emulator's call quota: 416s it answered (not the injected ones, which are in
    // faults_by_kind.code416), and the most calls the relay made in any 60 s span.
    quota_per_minute: quota.perMinute,
    quota_416: quota.rejected,
    max_calls_in_60s: quota.maxCallsPerWindow,
    over_quota: quota.overQuota,
  };
}
