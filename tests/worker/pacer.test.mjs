// The pacer after a 416: Yunxin blocks the whole app, so no call may leave
// until the block is over, or each burns another 416. The built relay in
// workerd paces at 600/min against an emulator whose quota is 5 a minute,
// so the sixth call trips it while more calls are due.
//
// The emulator's clock runs 20 times faster than the wall clock, so that its
// 60 s window and 60 s block take 3 s of the test: the relay's
// RATE_LIMIT_BACKOFF_SECS is the block's real length (3 s). What is checked is
// the order of the emulator's own records (no call inside its block), not
// how long anything took.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, notification, postEvent, startRelay } from './harness.mjs';

const SPEED = 20;
const BLOCK_EMU_MS = 60_000;

let emu;
before(async () => {
  const t0 = Date.now();
  emu = await startEmulator({
    apps: { [APP_KEY]: APP_SECRET },
    now: () => t0 + (Date.now() - t0) * SPEED,
    // The relay signs with the wall clock; the emulator's runs ahead.
    maxSkewSeconds: 1_000_000,
    quota: { perMinute: 5, blockSeconds: BLOCK_EMU_MS / 1000, window: 'sliding' },
  });
});
after(() => emu?.close());

test('a 416 while other calls are due: no call until the block is over, and no further 416', async (t) => {
  const relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    YUNXIN_RATE_PER_MINUTE: '600',
    RATE_LIMIT_BACKOFF_SECS: String(BLOCK_EMU_MS / 1000 / SPEED),
    RETRY_SCHEDULE_SECS: '1,1,1,1,1,1',
    UPSTREAM_TIMEOUT_MS: '2000',
  });
  t.after(() => relay.close());

  // Eight one-receiver events, queued: eight calls due within a second.
  const events = 8;
  const posted = await Promise.all(
    Array.from({ length: events }, (_, i) => postEvent(relay.url, notification(1, { prefix: `p${i}-` }), { wait: false })),
  );
  for (const { status } of posted) assert.equal(status, 202);

  await eventually(() => Object.keys(emu.deliveryCounts()).length === events, { what: 'every receiver delivered', ms: 60_000 });

  const requests = emu.requests();
  const refused = requests.filter((r) => r.code === 416);
  t.diagnostic(JSON.stringify(requests.map((r) => ({ at: r.at - requests[0].at, code: r.code, quota: r.quota }))));
  // The relay went over the quota once (it paces at 600/min, Yunxin allows 5)…
  assert.equal(refused.length, 1, `one 416, not ${refused.length}`);
  assert.equal(refused[0].quota, true);
  // …and sent nothing while the app was blocked.
  const blockedUntil = refused[0].at + BLOCK_EMU_MS;
  const during = requests.filter((r) => r.at > refused[0].at && r.at < blockedUntil);
  assert.deepEqual(during, [], 'calls made during the block');
  assert.ok(requests.some((r) => r.at >= blockedUntil), 'calls made after the block');
  assert.equal(emu.quotaStats().rejected, 1);
  // Each receiver exactly once.
  assert.deepEqual(Object.values(emu.deliveryCounts()), Array(events).fill(1));
});
