#!/usr/bin/env node
// Prints the relay's reliability figures: a burst of queued events delivered
// through workerd to the emulator while it fails about 30 % of calls (502,
// 500, dropped connections before and after delivery) after a spell of 416,
// and enforces Yunxin's call quota at the relay's own YUNXIN_RATE_PER_MINUTE
// (sliding 60 s window, 416 and a 60 s block over it).
//   node scripts/reliability.mjs [events] [receivers-per-event] [rate-per-minute]
// Exits 1 if a receiver was lost or notified twice, or if the relay's pacer
// went over the quota. Needs the built Workers (scripts/build-worker). Loopback only.
import { startEmulator } from '../emulator/index.mjs';
import { runBurst } from '../tests/worker/burst.mjs';
import { APP_KEY, APP_SECRET, startRelay } from '../tests/worker/harness.mjs';

const [events, receivers, perMinute] = [[2, 50], [3, 1000], [4, 6000]].map(([i, fallback]) => {
  const value = process.argv[i] ?? String(fallback);
  if (!/^[1-9][0-9]*$/.test(value)) {
    console.error('usage: node scripts/reliability.mjs [events] [receivers-per-event] [rate-per-minute] (positive integers)');
    process.exit(2);
  }
  return Number(value);
});
const token = 'reliability-run';
const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, seed: 7, quota: { perMinute } });
const relay = await startRelay({
  YUNXIN_BASE_URL: emu.url,
  STATUS_TOKEN: token,
  // Short waits so the run takes seconds; production defaults are 5 s … 1 h and 60 s.
  RETRY_SCHEDULE_SECS: '1,1,1,1,1,1,1,1',
  RATE_LIMIT_BACKOFF_SECS: '1',
  YUNXIN_RATE_PER_MINUTE: String(perMinute),
  UPSTREAM_TIMEOUT_MS: '2000',
});
try {
  const figures = await runBurst({ relay, emu, token, events, receivers });
  console.log(`reliability run (relay in workerd, emulator on 127.0.0.1 enforcing ${perMinute} calls/min)`);
  for (const [name, value] of Object.entries(figures)) {
    console.log(`  ${name.padEnd(22)} ${typeof value === 'object' ? JSON.stringify(value) : value}`);
  }
  const ok = figures.duplicates === 0 && figures.lost === 0 && figures.quota_416 === 0 && figures.over_quota === 0;
  process.exitCode = ok ? 0 : 1;
} finally {
  await relay.close();
  await emu.close();
}
