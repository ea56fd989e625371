// Turns the figures bench/run collected into its one table (Markdown, on stdout).
//
//   node bench/report.mjs DIR
//
// DIR holds: criterion/ (CRITERION_HOME of benches/core.rs), memory.json (its heap
// figures), peak-<n>.json + peak-<n>.time (one plan + sign under /usr/bin/time -v),
// signing.json (bench/signing.mjs), npm-plan.json (bench/npm-plan.mjs), worker.json
// (bench/worker.mjs), coldstart.json (bench/coldstart.mjs), queued.json (bench/queued.mjs),
// storm.json (bench/storm.mjs), cost.json (bench/cost.mjs --json),
// wrangler-dry-run.log (`wrangler deploy --dry-run` of the Worker). The other sizes are
// measured here, from worker/build, js/pkg and bench/baseline-worker. A section whose
// files are not in DIR is left out (so one bench's figures can be reported alone).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node bench/report.mjs DIR');
/** The JSON object a bench printed: its last line (wrangler may print lines before it). */
const readJson = (name) => JSON.parse(readFileSync(join(dir, name), 'utf8').trim().split('\n').at(-1));
/** Whether DIR holds all of these files (or directories). */
const has = (...names) => names.every((name) => existsSync(join(dir, name)));

// Targets of issues 6 and 14 (where both set one, issue 14's). Issue 18 replaced issue 14's
// 350 KB per Worker with Cloudflare's limits (LIMIT): no kilobyte target of its own.
const TARGET = {
  npmWasmGzip: 120_000,
  wasmSigningRatio: 1.0,
  nativeChecksumsPerSec: 5e6,
  plan100kMs: 50,
  workerThroughputRatio: 1.0,
  workerP99Ratio: 1.1,
  workerCpuRatio: 1.0,
  coldStartRatio: 1.5,
  npmPlanSpeedRatio: 1.0,
  quotaShare: (rate) => (rate >= 10_000 ? 0.9 : 0.95),
};

// Issue 20's targets (rows marked "(issue 20)"; issue 14's rows above stay as they were):
// the synchronous path against the JS baseline, the queued intake (time to the 202)
// against the baseline's synchronous events/s, workerd CPU per event over the event's
// whole life (bench/cost.mjs: intake to the last delivery, the consumer and every object
// included), and the cost per million events against the code before issue 20.
const TARGET20 = {
  syncThroughputRatio: 0.6,
  syncP99Ratio: 2.0,
  queuedIntakeRatio: 1.0,
  cpuRatio: 2.5,
  costRatio: 0.5,
};

// The cost model's USD per million 1-receiver events on the code before issue 20: it has
// no meter now, so it was counted once, on commit 0b946b1 (branch bench-before-issue-20:
// the code before issue 20 with the meter of bench/cost.mjs added, measurement only),
// three runs of `node bench/cost.mjs` on 2026-12-06, at the same PRICES.
const BEFORE_ISSUE_20 = {
  'relay-sync': { runs: [18.37, 18.48, 18.41] }, // mean $18.42
  'relay-queued': { runs: [14.57, 15.71, 14.63] }, // mean $14.97
};
for (const b of Object.values(BEFORE_ISSUE_20)) b.usd = b.runs.reduce((a, c) => a + c, 0) / b.runs.length;

// Cloudflare's limits on a Worker, https://developers.cloudflare.com/workers/platform/limits/:
// its size compressed, as `wrangler deploy` counts it ("gzip", in KiB; the refusal reads
// "exceeded the size limit of 3 MiB"), and its start-up (parsing and running its top level).
// The guard is scripts/deploy's, a third of the Free plan's limit.
const LIMIT = {
  freeGzipKiB: 3 * 1024,
  paidGzipKiB: 10 * 1024,
  guardGzipKiB: 1024,
  startupMs: 1000,
};

// ---------------------------------------------------------------------------
// formatting
// ---------------------------------------------------------------------------
const rows = [];
const row = (section, what, value, baseline, ratio, target = '', status = '') =>
  rows.push([section, what, value, baseline, ratio, target, status]);
const met = (ok) => (ok ? 'met' : '**NOT MET**');

function rate(perSec) {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M/s`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k/s`;
  return `${perSec.toFixed(1)}/s`;
}
function duration(ns) {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}
/** Decimal units: 1 KB = 1000 bytes (so the targets are read strictly). */
function bytes(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}
const ratio = (x) => `${x.toFixed(2)}×`;
/** `gzip -9` (the CLI js/build.sh reports with). */
const gzip = (path) => execFileSync('gzip', ['-9c', path], { maxBuffer: 64 << 20 }).length;
/** KiB as wrangler prints them. */
const kib = (x) => `${x.toFixed(2)} KiB`;

// ---------------------------------------------------------------------------
// 1. signing
// ---------------------------------------------------------------------------
/** criterion's typical time for one iteration, ns: the slope when it has one. */
function criterionNs(id) {
  return criterionEstimate(id).point_estimate;
}
/** { point_estimate, confidence_interval: { lower_bound, upper_bound } } in ns. */
function criterionEstimate(id) {
  const estimates = JSON.parse(readFileSync(join(dir, 'criterion', id, 'new', 'estimates.json'), 'utf8'));
  return estimates.slope ?? estimates.mean;
}

if (has('signing.json', 'criterion')) {
  const signing = readJson('signing.json');
  const base = signing.checksum['node:crypto createHash'].per_second;
  row('1 signing', 'CheckSum: JS, node:crypto `createHash(\'sha1\')` — baseline', rate(base), '—', ratio(1));
  const wasm = signing.checksum['wasm checksum'].per_second;
  row(
    '1 signing',
    'CheckSum: wasm `checksum()` (js/pkg in Node)',
    rate(wasm),
    rate(base),
    ratio(wasm / base),
    '≥ 1.0× baseline',
    met(wasm / base >= TARGET.wasmSigningRatio),
  );
  const nativeNs = criterionNs('sign/checksum');
  const native = 1e9 / nativeNs;
  row(
    '1 signing',
    'CheckSum: Rust native `checksum()` (criterion)',
    `${rate(native)} (${duration(nativeNs)})`,
    rate(base),
    ratio(native / base),
    '≥ 5 M/s',
    met(native >= TARGET.nativeChecksumsPerSec),
  );
  const oneShot = signing.checksum['node:crypto hash()'];
  if (oneShot) {
    row('1 signing', 'CheckSum: JS, node:crypto one-shot `hash()` (reference)', rate(oneShot.per_second), rate(base), ratio(oneShot.per_second / base));
  }

  const hBase = signing.headers['node:crypto createHash'].per_second;
  row('1 signing', 'headers (random nonce + clock): JS, node:crypto — baseline', rate(hBase), '—', ratio(1));
  const hWasm = signing.headers['wasm signHeaders'].per_second;
  row(
    '1 signing',
    'headers (random nonce + clock): wasm `signHeaders()`',
    rate(hWasm),
    rate(hBase),
    ratio(hWasm / hBase),
    '≥ 1.0× baseline',
    met(hWasm / hBase >= TARGET.wasmSigningRatio),
  );
  const signNs = criterionNs('sign/sign');
  row('1 signing', 'headers (random nonce + clock): Rust native `Credentials::sign()`', `${rate(1e9 / signNs)} (${duration(signNs)})`, rate(hBase), ratio(1e9 / signNs / hBase));
  const signAtNs = criterionNs('sign/sign_at');
  row('1 signing', 'headers (given nonce + time): Rust native `Credentials::sign_at()`', `${rate(1e9 / signAtNs)} (${duration(signAtNs)})`, rate(hBase), ratio(1e9 / signAtNs / hBase));
}

// ---------------------------------------------------------------------------
// 2. planning + signing, native
// ---------------------------------------------------------------------------
if (has('memory.json', 'criterion', ...[1, 500, 10_000, 100_000].map((n) => `peak-${n}.time`))) {
  const memory = Object.fromEntries(readJson('memory.json').map((m) => [m.receivers, m]));
  const sizes = [1, 500, 10_000, 100_000];
  const perReceiver = Object.fromEntries(sizes.map((n) => [n, criterionNs(`plan_sign/${n}`) / n]));
  for (const n of sizes) {
    const ns = criterionNs(`plan_sign/${n}`);
    const time = readFileSync(join(dir, `peak-${n}.time`), 'utf8');
    const rssKb = Number(/Maximum resident set size \(kbytes\): ([0-9]+)/.exec(time)?.[1]);
    const m = memory[n];
    const { lower_bound: lo, upper_bound: hi } = criterionEstimate(`plan_sign/${n}`).confidence_interval;
    const value =
      `${duration(ns)} (95 % CI ${duration(lo)} – ${duration(hi)}) = ${duration(perReceiver[n])}/receiver; ` +
      `${m.requests} call${m.requests === 1 ? '' : 's'}; ` +
      `peak heap ${bytes(m.peak_bytes)} (${(m.peak_bytes / n).toFixed(0)} B/receiver); max RSS ${bytes(rssKb * 1024)}`;
    const isTarget = n === 100_000;
    let status = '';
    if (isTarget) {
      status = met(ns / 1e6 < TARGET.plan100kMs);
      if (ns / 1e6 < TARGET.plan100kMs && hi / 1e6 >= TARGET.plan100kMs) status += ' (marginal: the 95 % CI reaches 50 ms)';
      if (ns / 1e6 >= TARGET.plan100kMs && lo / 1e6 < TARGET.plan100kMs) status += ' (marginal: the 95 % CI reaches below 50 ms)';
    }
    row(
      '2 plan + sign',
      `${n.toLocaleString('en-US')} receiver${n === 1 ? '' : 's'}: time per receiver vs 500${n === 500 ? ' — baseline' : ''}`,
      value,
      `${duration(perReceiver[500])}/receiver`,
      ratio(perReceiver[n] / perReceiver[500]),
      isTarget ? '< 50 ms' : '',
      status,
    );
  }
}

// ---------------------------------------------------------------------------
// 3 and 5. the Worker in workerd
// ---------------------------------------------------------------------------
if (has('worker.json')) {
  const worker = readJson('worker.json');
  const failures = (w) => {
    const n = Object.values(w.failures).reduce((a, c) => a + c, 0);
    return n ? ` (${n} of ${w.events} failed: ${JSON.stringify(w.failures)})` : '';
  };
  for (const s of worker.scenarios) {
    const r = s.workers.relay;
    const b = s.workers.baseline;
    const label = `${s.receivers} receiver${s.receivers === 1 ? '' : 's'}/event`;
    row(
      '3 Worker',
      `${label}: events/s, relay vs JS Worker (${s.events_per_worker} events each, ${worker.concurrency} in flight)`,
      `${r.events_per_second.toFixed(1)}/s${failures(r)}`,
      `${b.events_per_second.toFixed(1)}/s${failures(b)}`,
      ratio(r.events_per_second / b.events_per_second),
      '≥ 1.0× baseline',
      met(r.events_per_second / b.events_per_second >= TARGET.workerThroughputRatio && !failures(r)),
    );
    row('3 Worker', `${label}: p50 latency`, `${r.p50_ms.toFixed(1)} ms`, `${b.p50_ms.toFixed(1)} ms`, ratio(r.p50_ms / b.p50_ms));
    row(
      '3 Worker',
      `${label}: p99 latency`,
      `${r.p99_ms.toFixed(1)} ms`,
      `${b.p99_ms.toFixed(1)} ms`,
      ratio(r.p99_ms / b.p99_ms),
      '≤ 1.1× baseline',
      met(r.p99_ms / b.p99_ms <= TARGET.workerP99Ratio),
    );
    if (s.receivers === 1) {
      // Issue 20's targets on the same figures (synchronous, `Prefer: wait`).
      row(
        '3 Worker',
        `${label}: events/s, relay (\`Prefer: wait\`) vs JS Worker, ${worker.concurrency} in flight (issue 20)`,
        `${r.events_per_second.toFixed(1)}/s${failures(r)}`,
        `${b.events_per_second.toFixed(1)}/s${failures(b)}`,
        ratio(r.events_per_second / b.events_per_second),
        `≥ ${TARGET20.syncThroughputRatio}× baseline`,
        met(r.events_per_second / b.events_per_second >= TARGET20.syncThroughputRatio && !failures(r)),
      );
      row(
        '3 Worker',
        `${label}: p99 latency, relay (\`Prefer: wait\`) vs JS Worker (issue 20)`,
        `${r.p99_ms.toFixed(1)} ms`,
        `${b.p99_ms.toFixed(1)} ms`,
        ratio(r.p99_ms / b.p99_ms),
        `≤ ${TARGET20.syncP99Ratio.toFixed(1)}× baseline`,
        met(r.p99_ms / b.p99_ms <= TARGET20.syncP99Ratio),
      );
    }
  }
  // Issue 20's queued intake: the relay's 202s against the baseline's synchronous path,
  // in rounds alternating with it; every event's delivery waited for after each round.
  const q = worker.queued;
  if (q) {
    const r = q.workers.relay;
    const b = q.workers.baseline;
    const label = `${q.receivers} receiver${q.receivers === 1 ? '' : 's'}/event`;
    const x = r.events_per_second / b.events_per_second;
    const delivered = r.all_delivered
      ? `all ${r.receivers_sent} delivered`
      : `**${r.receivers_undelivered} of ${r.receivers_sent} not delivered** within ${r.drain_deadline_ms / 1000} s a round`;
    const dup = r.duplicate_deliveries ? `, ${r.duplicate_deliveries} delivered twice` : '';
    row(
      '3 Worker',
      `queued intake (no \`Prefer: wait\`, answered 202), ${label}: events/s to the 202, relay vs the JS Worker's synchronous events/s ` +
        `(${r.events} events each, ${worker.concurrency} in flight, rounds alternating), then every event's delivery (issue 20)`,
      `${r.events_per_second.toFixed(1)}/s${failures(r)}; ${delivered}${dup}`,
      `${b.events_per_second.toFixed(1)}/s${failures(b)}`,
      ratio(x),
      `≥ ${TARGET20.queuedIntakeRatio.toFixed(1)}× baseline, every event delivered`,
      met(x >= TARGET20.queuedIntakeRatio && !failures(r) && r.all_delivered),
    );
    row(
      '3 Worker',
      `queued intake, ${label}: p50 / p99 time to the 202, vs the JS Worker's synchronous answer (issue 20)`,
      `${r.p50_ms.toFixed(1)} / ${r.p99_ms.toFixed(1)} ms`,
      `${b.p50_ms.toFixed(1)} / ${b.p99_ms.toFixed(1)} ms`,
      ratio(r.p99_ms / b.p99_ms),
    );
    row(
      '3 Worker',
      `queued, ${label}: the drain after each round (last 202 to last delivery; total, longest round) and the relay's workerd CPU per event ` +
        `over intake + drain (during the intake alone), vs the JS Worker's synchronous event (issue 20)`,
      `drain ${(r.drain_ms_total / 1000).toFixed(1)} s (longest ${(r.drain_ms_max / 1000).toFixed(1)} s); ` +
        `CPU ${r.workerd_cpu_ms_per_event.toFixed(2)} ms/event (intake ${r.workerd_cpu_ms_per_event_intake.toFixed(2)} ms)`,
      `CPU ${b.workerd_cpu_ms_per_event.toFixed(2)} ms/event`,
      ratio(r.workerd_cpu_ms_per_event / b.workerd_cpu_ms_per_event),
    );
  }
  for (const s of worker.scenarios) {
    const r = s.workers.relay;
    const b = s.workers.baseline;
    row(
      '5 CPU/event',
      `${s.receivers} receiver${s.receivers === 1 ? '' : 's'}/event: workerd process CPU (user + sys) per event`,
      `${r.workerd_cpu_ms_per_event.toFixed(2)} ms (Miniflare's Node host: ${r.host_node_cpu_ms_per_event.toFixed(2)} ms)`,
      `${b.workerd_cpu_ms_per_event.toFixed(2)} ms (host: ${b.host_node_cpu_ms_per_event.toFixed(2)} ms)`,
      ratio(r.workerd_cpu_ms_per_event / b.workerd_cpu_ms_per_event),
      '≤ 1.0× baseline',
      met(r.workerd_cpu_ms_per_event / b.workerd_cpu_ms_per_event <= TARGET.workerCpuRatio),
    );
  }
}

// ---------------------------------------------------------------------------
// 4. sizes
// ---------------------------------------------------------------------------
if (has('wrangler-dry-run.log')) {
  const size = (path) => readFileSync(path).length;
  const baseline = 'bench/baseline-worker/index.js';
  const baseGzip = gzip(baseline);
  // "Total Upload: 1234.56 KiB / gzip: 456.78 KiB", as scripts/deploy reads it.
  const dryRun = readFileSync(join(dir, 'wrangler-dry-run.log'), 'utf8');
  const upload = [...dryRun.matchAll(/Total Upload: ([0-9.]+) KiB \/ gzip: ([0-9.]+) KiB/g)].at(-1);
  if (!upload) throw new Error(`wrangler deploy --dry-run printed no "Total Upload" line:\n${dryRun}`);
  const [rawKiB, gzipKiB] = [Number(upload[1]), Number(upload[2])];
  row(
    '4 size',
    'the Worker\'s bundle (`worker/build`), as `wrangler deploy --dry-run` counts it for Cloudflare\'s size limit, vs the Workers Free plan\'s limit',
    `${kib(gzipKiB)} gzip (raw ${kib(rawKiB)}); ${((gzipKiB / LIMIT.paidGzipKiB) * 100).toFixed(1)} % of the Paid plan's ${LIMIT.paidGzipKiB / 1024} MiB`,
    `${kib(LIMIT.freeGzipKiB)} gzip (Free plan)`,
    ratio(gzipKiB / LIMIT.freeGzipKiB),
    `< ${kib(LIMIT.guardGzipKiB)} gzip (scripts/deploy's guard)`,
    met(gzipKiB < LIMIT.guardGzipKiB),
  );
  // As the three Workers' bundles were counted before issue 18 (BENCHMARKS.md's figures for
  // them are in this unit), to set the one Worker beside them.
  const build = 'worker/build';
  const wasm = `${build}/index_bg.wasm`;
  const glue = `${build}/index.js`;
  const total = gzip(wasm) + gzip(glue);
  row(
    '4 size',
    `the same files, gzip -9 of index_bg.wasm + of index.js, vs the JS Worker`,
    `${bytes(gzip(wasm))} + ${bytes(gzip(glue))} = ${bytes(total)} (raw ${bytes(size(wasm))} + ${bytes(size(glue))})`,
    `${bytes(baseGzip)} (raw ${bytes(size(baseline))})`,
    ratio(total / baseGzip),
  );
  const npmWasm = 'js/pkg/yunxin_edge_bg.wasm';
  const npmWasmGz = gzip(npmWasm);
  row(
    '4 size',
    `npm: \`${npmWasm}\`, vs the target`,
    `${bytes(size(npmWasm))} raw, ${bytes(npmWasmGz)} gzip -9`,
    '120 KB gzip',
    ratio(npmWasmGz / TARGET.npmWasmGzip),
    '≤ 120 KB gzip',
    met(npmWasmGz <= TARGET.npmWasmGzip),
  );
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: 'js/pkg',
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  row('4 size', 'npm: `npm pack --dry-run` of js/pkg', `${bytes(pack.size)} packed, ${bytes(pack.unpackedSize)} unpacked, ${pack.entryCount} files`, '', '');
}

// ---------------------------------------------------------------------------
// 6. cold start
// ---------------------------------------------------------------------------
if (has('coldstart.json')) {
  const cold = readJson('coldstart.json');
  const r = cold.workers.relay.median;
  const b = cold.workers.baseline.median;
  const ms = (x) => `${x.toFixed(1)} ms`;
  // A load below 0 is within the start-up's noise and counts as 0 (bench/coldstart.mjs).
  const below = (x) => (x < 0 ? `0 (${ms(x)}: within the noise)` : ms(x));
  const wall = (m) => `${ms(m.cold_ms)} (load ${below(m.load_ms)} + first event ${ms(m.first_ms)}; a warm event: ${ms(m.warm_ms)})`;
  const cpu = (m) => `${ms(m.cpu_cold_ms)} (load ${below(m.cpu_load_ms)} + first event ${ms(m.cpu_first_event_ms)})`;
  const local = (m) => `${ms(m.local_cold_ms)} (+ ${below(m.prepare_extra_ms)} for Miniflare's preparation)`;
  row(
    '6 cold start',
    `the Worker (worker/build): first event of a fresh isolate, the Worker's load in workerd + its first answer (${cold.first_request}; median of ${cold.rounds} starts)`,
    wall(r),
    wall(b),
    ratio(r.cold_ms / b.cold_ms),
    '≤ 1.5× baseline',
    met(r.cold_ms / b.cold_ms <= TARGET.coldStartRatio),
  );
  row('6 cold start', 'the same in workerd CPU time (all its threads): load (vs the stub) + the first event', cpu(r), cpu(b), ratio(r.cpu_cold_ms / b.cpu_cold_ms));
  row(
    '6 cold start',
    'the same locally, with Miniflare reading and serialising the modules into workerd\'s configuration first (not on Cloudflare)',
    local(r),
    local(b),
    ratio(r.local_cold_ms / b.local_cold_ms),
  );
  // The load is what Cloudflare's start-up limit bounds (compiling the .wasm, running the
  // top level); measured in workerd here, not on Cloudflare's machines, so no target.
  row(
    '6 cold start',
    'the Worker\'s load alone (wall; workerd CPU), vs Cloudflare\'s start-up limit',
    `${below(r.load_ms)}; CPU ${below(r.cpu_load_ms)}`,
    `${ms(LIMIT.startupMs)} (start-up limit)`,
    ratio(Math.max(r.load_ms, r.cpu_load_ms, 0) / LIMIT.startupMs),
  );
  row(
    '6 cold start',
    'start-up: Miniflare\'s preparation + workerd spawned → mf.ready, the Worker / its stub of the same shape (the stub\'s is in none of the rows above)',
    `${ms(r.prepare_ms)} + ${ms(r.ready_ms)} / ${ms(r.stub_prepare_ms)} + ${ms(r.stub_ready_ms)}`,
    `${ms(b.prepare_ms)} + ${ms(b.ready_ms)} / ${ms(b.stub_prepare_ms)} + ${ms(b.stub_ready_ms)}`,
    ratio((r.prepare_ms + r.ready_ms) / (b.prepare_ms + b.ready_ms)),
  );
}

// ---------------------------------------------------------------------------
// 7. npm buildBatchRequests
// ---------------------------------------------------------------------------
if (has('npm-plan.json')) {
  const plan = readJson('npm-plan.json');
  for (const s of plan.sizes) {
    const ours = s.variants[s.ours];
    const base = s.variants[s.baseline];
    const speed = base.ms_per_build / ours.ms_per_build;
    const fmt = (v) => `${v.ms_per_build.toFixed(2)} ms/build (${v.builds_per_second.toFixed(1)} builds/s)`;
    row(
      '7 npm plan',
      `${s.receivers.toLocaleString('en-US')} receivers (${s.requests} calls): \`buildBatchRequests\` vs plain JS (node:crypto + JSON.stringify); ratio = speed, higher is better`,
      fmt(ours),
      fmt(base),
      ratio(speed),
      '≥ 1.0× baseline',
      met(speed >= TARGET.npmPlanSpeedRatio),
    );
  }
}

// ---------------------------------------------------------------------------
// 8. queued calls against the quota
// ---------------------------------------------------------------------------
if (has('queued.json')) {
  const queued = readJson('queued.json');
  for (const q of queued.rows) {
    const share = TARGET.quotaShare(q.rate);
    const misses = [];
    if (!(q.share_of_quota >= share)) misses.push('share');
    if (q.http_416 !== 0) misses.push('416');
    if (q.over_quota_in_60s !== 0) misses.push('over quota');
    if (q.delivered_calls !== q.calls) misses.push(`${q.calls - q.delivered_calls} calls not delivered`);
    const backlog = q.backlog_calls === undefined ? '' : `, ${q.backlog_calls} of them after the last event was queued, in ${q.backlog_s} s`;
    const whole = q.share_while_queueing === undefined ? '' : `; over the whole drain, intake included: ${ratio(q.share_while_queueing)}`;
    row(
      '8 queued',
      `${q.rate.toLocaleString('en-US')}/min quota (the emulator enforcing it): share used draining a backlog of ${q.calls.toLocaleString('en-US')} calls ` +
        `(${queued.receivers_per_event} receivers/event, ${queued.seconds} s of calls); HTTP 416s; most calls in any 60 s`,
      `${q.calls_per_minute.toLocaleString('en-US')} calls/min (${q.delivered_calls} delivered in ${q.drain_s} s${backlog}${whole}); ` +
        `${q.http_416} × 416; busiest 60 s ${q.busiest_60s} (${q.over_quota_in_60s} over)`,
      `${q.rate.toLocaleString('en-US')}/min`,
      ratio(q.share_of_quota),
      `≥ ${share.toFixed(2)}× quota, 0 × 416, 0 over`,
      misses.length ? `${met(false)} (${misses.join(', ')})` : met(true),
    );
  }
}

// ---------------------------------------------------------------------------
// 9. an alert storm, with and without a digest (issue 21)
// ---------------------------------------------------------------------------
if (has('storm.json')) {
  const storm = readJson('storm.json');
  const { plain, digested } = storm.routes;
  row(
    '9 storm',
    `${storm.events} webhook events of a flapping alert for two teams, over about two ${storm.window_secs} s windows: ` +
      'Yunxin calls (the per-minute quota counts calls) with a digest keyed by team, against the same route without',
    `${digested.calls} calls (${digested.notifications} notifications)`,
    `${plain.calls} calls`,
    ratio(storm.calls_ratio),
    'one call per window per team',
    met(digested.calls < plain.calls),
  );
}

// ---------------------------------------------------------------------------
// 10. what an event costs (issue 20, bench/cost.mjs)
// ---------------------------------------------------------------------------
if (has('cost.json')) {
  const cost = JSON.parse(readFileSync(join(dir, 'cost.json'), 'utf8')); // written by --json, indented
  const find = (kind, receivers) => cost.rows.find((r) => r.kind === kind && r.receivers === receivers);
  const usd = (x) => `$${x.toFixed(2)}`;
  const failed = (r) => (r.failures ? ` (**${r.failures} of ${r.events} failed**)` : '');
  const kinds = { 'relay-sync': 'synchronous (`Prefer: wait`)', 'relay-queued': 'queued (202)' };
  const receiversOf = (n) => `${n} receiver${n === 1 ? '' : 's'}`;
  const sizes = [...new Set(cost.rows.map((r) => r.receivers))].sort((a, b) => a - b);
  // CPU over the event's whole life: intake to the last delivery and until the meter
  // stops moving, the consumer and every object included.
  for (const n of sizes) {
    const b = find('baseline-sync', n);
    for (const kind of Object.keys(kinds)) {
      const r = find(kind, n);
      if (!r || !b) continue;
      row(
        '10 cost',
        `${receiversOf(n)}/event, relay ${kinds[kind]}: workerd CPU per event over its whole life (intake to the last delivery, ` +
          `the consumer and every Durable Object included; ${r.events} events, ${r.in_flight} in flight), vs the JS Worker (issue 20)`,
        `${r.cpu_ms.toFixed(2)} ms${failed(r)}`,
        `${b.cpu_ms.toFixed(2)} ms${failed(b)}`,
        ratio(r.cpu_ms / b.cpu_ms),
        `≤ ${TARGET20.cpuRatio}× baseline`,
        met(r.cpu_ms / b.cpu_ms <= TARGET20.cpuRatio && !r.failures),
      );
    }
  }
  // USD per million events at the published prices, against the same model's count on
  // the code before issue 20 (BEFORE_ISSUE_20).
  const parts = (r) => {
    const u = r.usd_breakdown;
    return `requests ${usd(u.invocations)}, CPU ${usd(u.cpu)}, DO requests ${usd(u.do_requests)}, SQLite rows ${usd(u.sqlite_rows)}, queue ${usd(u.queue)}`;
  };
  for (const kind of Object.keys(kinds)) {
    const r = find(kind, 1);
    if (!r) continue;
    const before = BEFORE_ISSUE_20[kind];
    const x = r.usd_per_million / before.usd;
    row(
      '10 cost',
      `1 receiver/event, relay ${kinds[kind]}: USD per million events at published prices (Workers Paid, beyond the inclusions), ` +
        `now vs the code before issue 20 (0b946b1, mean of 3 runs) (issue 20)`,
      `${usd(r.usd_per_million)} (${parts(r)})${failed(r)}`,
      `${usd(before.usd)} (${before.runs.map(usd).join(', ')})`,
      ratio(x),
      `≤ ${TARGET20.costRatio}× before`,
      met(x <= TARGET20.costRatio && !r.failures),
    );
  }
  {
    const p = cost.prices;
    const floor = (p.invocation + p.do_request + p.sqlite_row_written) * 1e6;
    const sync = find('relay-sync', 1);
    row(
      '10 cost',
      'the floor: one Worker request + one Durable Object request + one SQLite row written per event, at the same prices, ' +
        'vs the synchronous 1-receiver event before issue 20 (the lowest ratio the row above could reach without CPU) (issue 20)',
      `${usd(floor)} (${usd(p.invocation * 1e6)} + ${usd(p.do_request * 1e6)} + ${usd(p.sqlite_row_written * 1e6)})` +
        (sync ? `; the relay now: ${ratio(sync.usd_per_million / floor)} the floor` : ''),
      usd(BEFORE_ISSUE_20['relay-sync'].usd),
      ratio(floor / BEFORE_ISSUE_20['relay-sync'].usd),
    );
    const b = find('baseline-sync', 1);
    if (b) row('10 cost', 'the JS Worker, 1 receiver/event: USD per million events (one request and its CPU; no objects, no queue) (issue 20)', `${usd(b.usd_per_million)} (${parts(b)})`, '', '');
  }
  // What the model counts per event. The round trips of issue 20 (≤ 2 Durable Object
  // round trips per one-call synchronous event, ≤ 1 for the queued intake) are asserted in
  // tests/worker/trips.test.mjs; these count every object request, the pacer's, the
  // index's, the consumer's and alarms included.
  for (const n of sizes) {
    for (const kind of Object.keys(kinds)) {
      const r = find(kind, n);
      if (!r) continue;
      row(
        '10 cost',
        `${receiversOf(n)}/event, relay ${kinds[kind]}: Durable Object requests per event (every stub call and alarm: the event's object, ` +
          'the pacer, the index; issue 20\'s round trips are asserted in tests/worker/trips.test.mjs), and what else is billed per event (issue 20)',
        `${r.do_requests.toFixed(2)} DO requests; ${r.sqlite_rows_written.toFixed(2)} SQLite rows written, ` +
          `${r.invocations.toFixed(2)} invocations, ${r.queue_operations.toFixed(2)} queue operations`,
        '',
        '',
      );
    }
  }
}

// ---------------------------------------------------------------------------
const header = ['#', 'measurement', 'value', 'baseline', 'ratio', 'target', 'status'];
const escape = (cell) => String(cell).replaceAll('|', '\\|');
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`];
for (const r of rows) lines.push(`| ${r.map(escape).join(' | ')} |`);
process.stdout.write(`${lines.join('\n')}\n`);

const missed = rows.filter((r) => r[6].startsWith(met(false))).length;
const kept = rows.filter((r) => r[6].startsWith(met(true))).length;
process.stdout.write(`\ntargets: ${kept} met, ${missed} not met\n`);
