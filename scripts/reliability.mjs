#!/usr/bin/env node
// Prints the relay's reliability figures: a burst of queued events delivered
// through workerd to the emulator while it fails about 30 % of calls (502,
// 500, dropped connections before and after delivery) after a spell of 416.
//   node scripts/reliability.mjs [events] [receivers-per-event]
// Needs the built Worker (scripts/build-worker). Loopback only.
import { startEmulator } from '../emulator/index.mjs';
import { runBurst } from '../tests/worker/burst.mjs';
import { APP_KEY, APP_SECRET, startRelay } from '../tests/worker/harness.mjs';

const events = Number(process.argv[2] ?? 50);
const receivers = Number(process.argv[3] ?? 1000);
const token = 'reliability-run';
const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, seed: 7 });
const relay = await startRelay({
  YUNXIN_BASE_URL: emu.url,
  STATUS_TOKEN: token,
  // Short waits so the run takes seconds; production defaults are 5 s … 1 h and 60 s.
  RETRY_SCHEDULE_SECS: '1,1,1,1,1,1,1,1',
  RATE_LIMIT_BACKOFF_SECS: '1',
  YUNXIN_RATE_PER_MINUTE: '6000',
  UPSTREAM_TIMEOUT_MS: '2000',
});
try {
  const figures = await runBurst({ relay, emu, token, events, receivers });
  console.log('reliability run (relay in workerd, emulator on 127.0.0.1)');
  for (const [name, value] of Object.entries(figures)) {
    console.log(`  ${name.padEnd(22)} ${typeof value === 'object' ? JSON.stringify(value) : value}`);
  }
  process.exitCode = figures.duplicates === 0 && figures.lost === 0 ? 0 : 1;
} finally {
  await relay.close();
  await emu.close();
}
