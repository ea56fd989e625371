// Queued throughput against the app's quota: the Worker (worker/build) in workerd through
// Miniflare (`startRelay`), its queue consumer draining a backlog of 500-receiver calls,
// against the Yunxin emulator in this process enforcing the same quota as Yunxin does
// (a sliding 60 s window; over it, 416 and the app blocked for 60 s), all on 127.0.0.1.
//
//   node bench/queued.mjs [--quick] [--rates 120,600,2000,5000,10000] [--seconds 60]
//
// For each YUNXIN_RATE_PER_MINUTE: events of 2,500 receivers (five calls each) are queued,
// enough for `--seconds` of calls at that rate, then the emulator's record is read once
// every call has arrived (or at the deadline). Prints one JSON object on stdout: per rate,
// the calls, the share of the quota used while draining the backlog (from the moment every
// event is queued to the last call; `share_while_queueing` is over the whole drain, when
// the intake of the events competes for the same CPU), the most calls in any 60 s window,
// the calls over the quota in any 60 s window and the 416s, as the emulator counted them.
import { startEmulator } from '../emulator/index.mjs';
import { APP_KEY, APP_SECRET, notification, postEvent, startRelay } from '../tests/worker/harness.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const rates = arg('--rates', quick ? '600' : '120,600,2000,5000,10000').split(',').map(Number);
const seconds = Number(arg('--seconds', quick ? '10' : '60'));
const RECEIVERS = 2500;
const CALLS_PER_EVENT = RECEIVERS / 500;
const POSTERS = 8;

async function measure(rate) {
  const emulator = await startEmulator({
    apps: { [APP_KEY]: APP_SECRET },
    quota: { perMinute: rate, blockSeconds: 60, window: 'sliding' },
  });
  const relay = await startRelay({
    YUNXIN_BASE_URL: emulator.url,
    YUNXIN_RATE_PER_MINUTE: String(rate),
    RATE_LIMIT_BACKOFF_SECS: '60',
  });
  try {
    const calls = Math.ceil((rate * seconds) / 60);
    const events = Math.ceil(calls / CALLS_PER_EVENT);
    let next = 0;
    const posted = Date.now();
    await Promise.all(
      Array.from({ length: POSTERS }, async () => {
        while (next < events) {
          const i = next++;
          const result = await postEvent(relay.url, notification(RECEIVERS, { prefix: `e${i}u` }), { wait: false });
          if (result.status !== 202) throw new Error(`event ${i}: HTTP ${result.status} ${result.text}`);
        }
      }),
    );
    const queuedAt = Date.now();
    const queuedMs = queuedAt - posted;
    const expected = events * CALLS_PER_EVENT;
    const deadline = Date.now() + ((expected / rate) * 60 + 60) * 1000;
    const delivered = () => emulator.requests().filter((r) => r.code === 200 && !r.replayed).length;
    while (delivered() < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));

    const accepted = emulator.requests().filter((r) => r.code === 200 && !r.replayed);
    const quota = emulator.quotaStats();
    const times = accepted.map((r) => r.at).sort((a, b) => a - b);
    const rateOf = (calls) => (calls.length > 1 ? ((calls.length - 1) / (calls.at(-1) - calls[0])) * 60_000 : 0);
    const whileQueueing = rateOf(times.slice(9));
    const backlog = times.filter((t) => t >= queuedAt);
    const perMinute = rateOf(backlog);
    return {
      rate,
      calls: expected,
      delivered_calls: accepted.length,
      queued_in_ms: queuedMs,
      drain_s: Number(((times.at(-1) - times[0]) / 1000).toFixed(1)),
      backlog_calls: backlog.length,
      backlog_s: Number(((backlog.at(-1) - backlog[0]) / 1000 || 0).toFixed(1)),
      calls_per_minute: Math.round(perMinute),
      share_of_quota: Number((perMinute / rate).toFixed(3)),
      share_while_queueing: Number((whileQueueing / rate).toFixed(3)),
      busiest_60s: quota.maxCallsPerWindow,
      over_quota_in_60s: quota.overQuota,
      http_416: quota.rejected,
    };
  } finally {
    await relay.close();
    await emulator.close();
  }
}

const rows = [];
for (const rate of rates) {
  const row = await measure(rate);
  console.error(JSON.stringify(row));
  rows.push(row);
}
console.log(JSON.stringify({ seconds, receivers_per_event: RECEIVERS, rows }));
