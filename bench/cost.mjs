// The cost model of issue 20: what a million events cost on Cloudflare's Workers Paid
// price list, counted from a run, not estimated. The relay (worker/build) runs in workerd
// through Miniflare with BENCH_METER=1, which makes it count, where each is spent, its
// invocations, Durable Object requests (stub calls and alarms), SQLite rows written
// (SQLite's own rowsWritten) and queue messages written, read and acknowledged; GET
// /__meter answers the counts. CPU is workerd's own (utime + stime from /proc), which
// includes its objects' CPU; the load generator and the emulator run in this process.
// The JavaScript baseline (bench/baseline-worker: the synchronous path by hand, no
// objects, no queue) runs the same way.
//
//   node bench/cost.mjs [--quick] [--json FILE]
//
// Prices: see PRICES below and BENCHMARKS.md (pages and the date they were read).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Miniflare } from 'miniflare';
import { startEmulator } from '../emulator/index.mjs';
import { APP_KEY, APP_SECRET, WEBHOOK_SECRET, notification, postEvent, startRelay } from '../tests/worker/harness.mjs';

const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;

/** Workers Paid, USD, beyond the monthly inclusions (BENCHMARKS.md cites the pages). */
export const PRICES = {
  invocation: 0.3 / 1e6, // Workers requests: $0.30 per million
  cpu_ms: 0.02 / 1e6, // Workers CPU time: $0.02 per million CPU ms
  do_request: 0.15 / 1e6, // Durable Objects requests (and alarms): $0.15 per million
  sqlite_row_written: 1.0 / 1e6, // SQLite-backed Durable Objects: $1.00 per million rows written
  queue_operation: 0.4 / 1e6, // Queues: $0.40 per million operations (64 KB each)
};

const TICKS = 100;
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** The workerd processes this process started (Miniflare's), by pid. */
function workerdPids() {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm.startsWith('workerd') && ppid === process.pid) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}
const workerdCpu = () => workerdPids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function meter(url) {
  const response = await fetch(`${url}/__meter`);
  if (response.status !== 200) throw new Error(`GET /__meter: ${response.status}`);
  return response.json();
}

/** Waits until the meter stops moving (index writes and acks after the answers). */
async function settledMeter(url) {
  let last = JSON.stringify(await meter(url));
  for (;;) {
    await sleep(1500);
    const now = await meter(url);
    const key = JSON.stringify(now);
    if (key === last) return now;
    last = key;
  }
}

/** `count` events of `receivers` each, `inFlight` at a time; answers the counts per event. */
async function relayRun({ receivers, count, wait, inFlight }) {
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  const relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    YUNXIN_RATE_PER_MINUTE: '60000',
    BENCH_METER: '1',
  });
  try {
    // Warm: the isolate, the pacer's lease, the index's tables.
    for (let i = 0; i < 3; i++) await postEvent(relay.url, notification(receivers, { prefix: `warm${i}-` }), { wait });
    await settledEmu(emu, 3 * receivers);
    const before = await settledMeter(relay.url);
    const cpuBefore = workerdCpu();
    let next = 0;
    const failures = [];
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) {
          const i = next++;
          const sent = await postEvent(relay.url, notification(receivers, { prefix: `e${i}-` }), { wait });
          if (sent.status !== (wait ? 200 : 202)) failures.push(sent.status);
        }
      }),
    );
    await settledEmu(emu, (3 + count) * receivers);
    const after = await settledMeter(relay.url);
    const cpu = workerdCpu() - cpuBefore;
    const per = (k) => (after[k] - before[k]) / count;
    return {
      failures: failures.length,
      invocations: per('invocations'),
      do_requests: per('do_requests'),
      sqlite_rows_written: per('sqlite_rows_written'),
      queue_operations: per('queue_writes') + per('queue_reads') + per('queue_deletes'),
      cpu_ms: (cpu * 1000) / count,
    };
  } finally {
    await relay.close();
    await emu.close();
  }
}
async function settledEmu(emu, deliveries) {
  const deadline = Date.now() + 180_000;
  while (emu.deliveries().length < deliveries) {
    if (Date.now() > deadline) throw new Error(`only ${emu.deliveries().length} of ${deliveries} deliveries`);
    await sleep(200);
  }
}

/** The baseline: the same events through bench/baseline-worker (synchronous only). */
async function baselineRun({ receivers, count, inFlight }) {
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    modules: true,
    scriptPath: 'bench/baseline-worker/index.js',
    compatibilityDate: '2026-04-01',
    bindings: {
      YUNXIN_APP_KEY: APP_KEY,
      YUNXIN_APP_SECRET: APP_SECRET,
      WEBHOOK_SECRET,
      YUNXIN_BASE_URL: emu.url,
      MAX_RECEIVERS_PER_EVENT: '10000',
      UPSTREAM_TIMEOUT_MS: '10000',
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  try {
    for (let i = 0; i < 3; i++) await postEvent(url, notification(receivers, { prefix: `warm${i}-` }));
    const cpuBefore = workerdCpu();
    let next = 0;
    let failures = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) {
          const i = next++;
          const sent = await postEvent(url, notification(receivers, { prefix: `e${i}-` }));
          if (sent.status !== 200) failures += 1;
        }
      }),
    );
    const cpu = workerdCpu() - cpuBefore;
    return { failures, invocations: 1, do_requests: 0, sqlite_rows_written: 0, queue_operations: 0, cpu_ms: (cpu * 1000) / count };
  } finally {
    await mf.dispose();
    await emu.close();
  }
}

function priced(per) {
  const usd = {
    invocations: per.invocations * PRICES.invocation * 1e6,
    cpu: per.cpu_ms * PRICES.cpu_ms * 1e6,
    do_requests: per.do_requests * PRICES.do_request * 1e6,
    sqlite_rows: per.sqlite_rows_written * PRICES.sqlite_row_written * 1e6,
    queue: per.queue_operations * PRICES.queue_operation * 1e6,
  };
  return { ...per, usd_per_million: Object.values(usd).reduce((a, b) => a + b, 0), usd_breakdown: usd };
}

const small = quick ? 30 : 300;
const large = quick ? 4 : 30;
const rows = [];
// `kind` and `receivers` let bench/report.mjs find the rows without parsing their names.
for (const [name, kind, receivers, count, inFlight] of [
  ['relay sync, 1 receiver', 'relay-sync', 1, small, 8],
  ['relay queued, 1 receiver', 'relay-queued', 1, small, 8],
  ['JS baseline sync, 1 receiver', 'baseline-sync', 1, small, 8],
  ['relay sync, 500 receivers', 'relay-sync', 500, large, 4],
  ['relay queued, 500 receivers', 'relay-queued', 500, large, 4],
  ['JS baseline sync, 500 receivers', 'baseline-sync', 500, large, 4],
]) {
  const per =
    kind === 'baseline-sync'
      ? await baselineRun({ receivers, count, inFlight })
      : await relayRun({ receivers, count, wait: kind === 'relay-sync', inFlight });
  const row = { name, kind, receivers, events: count, in_flight: inFlight, ...priced(per) };
  rows.push(row);
  console.error(JSON.stringify(row));
}

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
console.log('| per event | invocations | DO requests | SQLite rows written | queue ops | workerd CPU ms | USD per million events |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.name} | ${fmt(r.invocations)} | ${fmt(r.do_requests)} | ${fmt(r.sqlite_rows_written)} | ${fmt(r.queue_operations)} | ${fmt(r.cpu_ms)} | $${fmt(r.usd_per_million)} |`,
  );
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ quick, prices: PRICES, rows }, null, 2));
process.exit(0);
