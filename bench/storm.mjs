// Quota calls an alert storm costs, with and without a digest: the Worker
// (worker/build) in workerd through Miniflare (`startRelay`), against the
// Yunxin emulator in this process, all on 127.0.0.1.
//
//   node bench/storm.mjs [--quick] [--events 200] [--window 3]
//
// The same storm is sent twice, as Alertmanager would send a flapping alert
// for two teams: `--events` webhook events, in bursts over about two digest
// windows, to a route without a digest and to the same route with
// `digest = { window_secs = --window, key = "payload.team" }`. Prints one
// JSON object on stdout: per route, the events, the Yunxin calls the
// emulator saw (the app's per-minute quota is counted in calls) and the
// notifications each receiver got; and the share of calls the digest saved.
import { startEmulator } from '../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, request, startRelay } from '../tests/worker/harness.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const EVENTS = arg('--events', quick ? 40 : 200);
const WINDOW_SECS = arg('--window', 3);
const HOOK_TOKEN = 'bench-storm-token';

const base = {
  verify: { scheme: 'bearer', secrets: ['HOOK_TOKEN'] },
  sender_id: 'alert-bot',
  receivers_from: 'payload.to',
  content: '{{ payload.alert }}',
};
const routes = {
  plain: base,
  digested: {
    ...base,
    digest: { window_secs: WINDOW_SECS, key: 'payload.team', max_events: 1000 },
    digest_content: '{{ key }}: {{ count }} alerts',
  },
};

const emulator = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
const relay = await startRelay({
  YUNXIN_BASE_URL: emulator.url,
  YUNXIN_RATE_PER_MINUTE: '6000',
  HOOK_TOKEN,
  ROUTES: routes,
});
try {
  const result = { events: EVENTS, window_secs: WINDOW_SECS, routes: {} };
  for (const route of Object.keys(routes)) {
    emulator.reset();
    const started = Date.now();
    for (let i = 0; i < EVENTS; i++) {
      const team = i % 2 ? 'db' : 'web';
      const answer = await request(`${relay.url}/v1/hooks/${route}`, {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${HOOK_TOKEN}` },
        body: JSON.stringify({ team, alert: `${route}-${i}`, to: [`${team}-oncall`] }),
      });
      if (answer.status !== 202) throw new Error(`${route}: HTTP ${answer.status} ${answer.text}`);
      // Bursts spread over about two windows, as a flapping alert comes.
      if (i % Math.ceil(EVENTS / 4) === Math.ceil(EVENTS / 4) - 1) {
        await new Promise((resolve) => setTimeout(resolve, (WINDOW_SECS * 1000) / 2));
      }
    }
    const sent = Date.now() - started;
    // Every event's notification (plain), or every window's digest, arrived.
    const receivers = () => emulator.deliveries().length;
    const expected = route === 'plain' ? EVENTS : null;
    await eventually(
      async () => {
        const before = receivers();
        await new Promise((resolve) => setTimeout(resolve, WINDOW_SECS * 1000 + 1000));
        return expected === null ? receivers() === before && before > 0 : receivers() === expected;
      },
      { what: `${route}: every notification`, ms: 120_000 },
    );
    result.routes[route] = {
      calls: emulator.requests().length,
      notifications: receivers(),
      sent_ms: sent,
    };
  }
  const { plain, digested } = result.routes;
  result.calls_saved = plain.calls - digested.calls;
  result.calls_ratio = Number((digested.calls / plain.calls).toFixed(3));
  console.log(JSON.stringify(result));
} finally {
  await relay.close();
  await emulator.close();
}
