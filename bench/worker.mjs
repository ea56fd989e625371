// Worker throughput, latency and CPU per event: the relay (worker/build, Rust → wasm) and
// the hand-written JavaScript baseline (bench/baseline-worker) in workerd through
// Miniflare, each in its own host process, against one Yunxin emulator process, driven by
// this process's load generator, all on 127.0.0.1.
//
//   node bench/worker.mjs [--quick]      prints one JSON object on stdout
//
// The synchronous path (`Prefer: wait`): an event is answered once every call reached
// the emulator. Bounded: a fixed number of events per scenario at a fixed concurrency,
// split into rounds that alternate between the two Workers (A B, B A, A B, ...); every request
// has a timeout and every scenario a deadline; every process started here is stopped at
// the end, workerd included (SIGKILL if it outlives its host).
//
// Then the queued intake (issue 20): the relay without `Prefer: wait` (answered 202 once
// the event is queued), 1 receiver, the same concurrency and rounds alternating with the
// JS baseline's synchronous path. Each event has its own receiver (`q<n>-0`), so that the
// emulator's deliveries per receiver (`GET /_emulator/counts`) tell which events arrived.
// After each relay round, before the next baseline round, it waits (bounded) until every
// event of the round was delivered, then until the relay's workerd has gone quiet (its
// deferred index writes); the relay's workerd CPU per event counts each round from its
// first request to that point: intake and drain.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { webhookHeaders } from '../scripts/lib/webhook.mjs';

const quick = process.argv.includes('--quick');
const APP_KEY = 'bench-app';
const APP_SECRET = 'bench-app-secret';
const WEBHOOK_SECRET = `whsec_${Buffer.from('bench-webhook-key-0123456789').toString('base64')}`;
const CONCURRENCY = 8;
const ROUNDS = quick ? 3 : 5;
// Enough events that p99 is not just the slowest one and that workerd's CPU time,
// counted in 10 ms ticks, is read to a few per cent.
const SCENARIOS = quick
  ? [
      { receivers: 1, events: 60, warmup: 10 },
      { receivers: 500, events: 15, warmup: 3 },
    ]
  : [
      { receivers: 1, events: 1500, warmup: 50 },
      { receivers: 500, events: 300, warmup: 10 },
    ];
// The queued intake: as many events as the synchronous 1-receiver scenario in quick mode;
// fewer in the full run (the drains come on top: about 30 s in all on 2 cores).
const QUEUED = quick ? { receivers: 1, events: 60, warmup: 10 } : { receivers: 1, events: 1000, warmup: 50 };
const DRAIN_DEADLINE_MS = quick ? 30_000 : 60_000; // per round
const QUIET_MS = 1_500; // workerd idle this long: the drain's last writes are done (index: DEFER_MS = 1 s)
const QUIET_DEADLINE_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const SCENARIO_DEADLINE_MS = 120_000;
const TOTAL_DEADLINE_MS = 600_000;
const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

const children = [];
// Miniflare leaves a directory in the temporary directory of its process: give the
// hosts one of ours, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'yunxin-bench-'));
const strayPids = new Set();

function startProcess(args, env = {}) {
  const child = spawn(process.execPath, args, {
    cwd: process.cwd(),
    env: { ...process.env, TMPDIR: scratch, ...env },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  children.push(child);
  return child;
}

/** The first line of the child's stdout that `match`es (60 s at most). */
async function firstLine(child, what, match = () => true) {
  const lines = createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    for await (const line of lines) {
      if (!match(line)) continue;
      lines.close();
      return line;
    }
    throw new Error(`${what} exited before it was ready`);
  } finally {
    clearTimeout(timer);
    // Keep draining whatever else it prints.
    child.stdout.resume();
  }
}

async function startEmulatorProcess() {
  const child = startProcess(['emulator/cli.mjs', '--port', '0', '--app-key', APP_KEY], {
    YUNXIN_APP_SECRET: APP_SECRET,
  });
  const line = await firstLine(child, 'the emulator');
  const url = /listening on (http:\/\/127\.0\.0\.1:[0-9]+)/.exec(line)?.[1];
  if (!url) throw new Error(`the emulator printed ${line}`);
  return { url, pid: child.pid };
}

async function startHost(which, emulatorUrl) {
  const bindings = {
    YUNXIN_APP_KEY: APP_KEY,
    YUNXIN_APP_SECRET: APP_SECRET,
    WEBHOOK_SECRET,
    YUNXIN_BASE_URL: emulatorUrl,
    MAX_RECEIVERS_PER_EVENT: '10000',
    UPSTREAM_TIMEOUT_MS: '10000',
    // The synchronous path goes through the pacer: a quota far above the
    // load, so that this measures the relay's cost, not the quota (the JS
    // baseline has no pacing, and no event store either).
    YUNXIN_RATE_PER_MINUTE: '600000',
  };
  const child = startProcess(['bench/worker-host.mjs', which], { BENCH_BINDINGS: JSON.stringify(bindings) });
  const line = await firstLine(child, `the ${which} host`, (l) => l.startsWith('bench-host '));
  const info = JSON.parse(line.slice('bench-host '.length));
  if (info.workerdPid) strayPids.add(info.workerdPid);
  return { which, child, ...info };
}

/** Alive and not a zombie. */
function running(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Hosts stop when their stdin closes (mf.dispose(), which waits for workerd); the
 * emulator on SIGTERM. Whatever is still there after 10 s is killed, and so is a
 * workerd that outlived its host.
 */
async function stopAll() {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin.end();
      if (child.spawnargs.includes('emulator/cli.mjs')) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  for (const pid of strayPids) {
    if (!running(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  rmSync(scratch, { recursive: true, force: true });
}

/** utime + stime of a process (all its threads), in seconds. */
function cpuSeconds(pid) {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is fields[0]; utime is field 14, stime 15.
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return NaN;
  }
}

function notificationBody(receivers, prefix) {
  return JSON.stringify({
    sender_id: 'bot',
    receiver_ids: Array.from({ length: receivers }, (_, i) => `${prefix}${i}`),
    content: 'deploy finished',
  });
}

/**
 * POSTs one signed event, with Prefer: wait unless `wait` is false (then a 202 is the
 * answer expected); resolves to { ms, ok, status }.
 */
async function postEvent(url, body, receivers, wait = true) {
  const headers = {
    'content-type': 'application/json',
    ...webhookHeaders(body, { secret: WEBHOOK_SECRET }),
    ...(wait ? { prefer: 'wait' } : {}),
  };
  const started = process.hrtime.bigint();
  try {
    const response = await fetch(`${url}/v1/notifications`, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (!wait) return { ms, ok: response.status === 202, status: response.status };
    let delivered = -1;
    try {
      delivered = JSON.parse(text).delivered?.length ?? -1;
    } catch {}
    return { ms, ok: response.status === 200 && delivered === receivers, status: response.status };
  } catch (e) {
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, ok: false, status: String(e?.name ?? e) };
  }
}

/**
 * `count` events at `CONCURRENCY` in flight, stopping early at `deadline`. `body` is the
 * body of every event, or a function of the event's number in this load.
 */
async function load(target, body, receivers, count, deadline, { wait = true } = {}) {
  const bodyOf = typeof body === 'function' ? body : () => body;
  const latencies = [];
  const failures = {};
  let issued = 0;
  const cpuBefore = cpuSeconds(target.workerdPid);
  const hostBefore = cpuSeconds(target.hostPid);
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (issued < count && Date.now() < deadline) {
      const n = issued++;
      const r = await postEvent(target.url, bodyOf(n), receivers, wait);
      latencies.push(r.ms);
      if (!r.ok) failures[r.status] = (failures[r.status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    issued,
    latencies,
    failures,
    seconds,
    workerdCpu: cpuSeconds(target.workerdPid) - cpuBefore,
    hostCpu: cpuSeconds(target.hostPid) - hostBefore,
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

async function main() {
  const hardStop = setTimeout(async () => {
    process.stderr.write(`bench/worker.mjs: over ${TOTAL_DEADLINE_MS} ms, stopping\n`);
    await stopAll();
    process.exit(3);
  }, TOTAL_DEADLINE_MS);
  hardStop.unref();

  const emulator = await startEmulatorProcess();
  const targets = [await startHost('relay', emulator.url), await startHost('baseline', emulator.url)];
  const result = { concurrency: CONCURRENCY, rounds: ROUNDS, scenarios: [] };
  result.emulatorPid = emulator.pid;
  for (const t of targets) if (!t.workerdPid) throw new Error(`no workerd process found for ${t.which}`);

  for (const { receivers, events, warmup } of SCENARIOS) {
    const body = notificationBody(receivers, 'user');
    const deadline = Date.now() + SCENARIO_DEADLINE_MS;
    // Warm-up (not counted): isolate start, wasm compilation, JIT, connection pools.
    for (const t of targets) await load(t, body, receivers, warmup, deadline);
    const runs = Object.fromEntries(targets.map((t) => [t.which, []]));
    const perRound = Math.ceil(events / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? [...targets].reverse() : targets;
      for (const t of order) runs[t.which].push(await load(t, body, receivers, perRound, deadline));
    }
    const scenario = { receivers, events_per_worker: perRound * ROUNDS, workers: {} };
    for (const [which, list] of Object.entries(runs)) scenario.workers[which] = summary(list);
    result.scenarios.push(scenario);
  }
  result.queued = await queuedScenario(emulator, targets);
  return result;
}

/** The figures of a Worker's loads in one scenario. */
function summary(list) {
  const latencies = list.flatMap((l) => l.latencies).sort((a, b) => a - b);
  const seconds = list.reduce((s, l) => s + l.seconds, 0);
  const cpu = list.reduce((s, l) => s + l.workerdCpu, 0);
  const hostCpu = list.reduce((s, l) => s + l.hostCpu, 0);
  const failures = {};
  for (const l of list) for (const [k, v] of Object.entries(l.failures)) failures[k] = (failures[k] ?? 0) + v;
  return {
    events: latencies.length,
    seconds,
    events_per_second: latencies.length / seconds,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    max_ms: latencies[latencies.length - 1],
    failures,
    workerd_cpu_ms_per_event: (cpu * 1000) / latencies.length,
    host_node_cpu_ms_per_event: (hostCpu * 1000) / latencies.length,
  };
}

/** The emulator's deliveries per (lower-cased) receiver id. */
async function deliveryCounts(emulatorUrl) {
  const response = await fetch(`${emulatorUrl}/_emulator/counts`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (response.status !== 200) throw new Error(`GET /_emulator/counts: ${response.status}`);
  return response.json();
}

/**
 * Waits until every id in `ids` was delivered at least once, or `deadline`; answers
 * { ms, undelivered, duplicates } (duplicates: deliveries beyond the first, over `ids`).
 */
async function drain(emulatorUrl, ids, deadline) {
  const started = Date.now();
  for (;;) {
    const counts = await deliveryCounts(emulatorUrl);
    const undelivered = ids.filter((id) => !(counts[id] >= 1)).length;
    if (undelivered === 0 || Date.now() >= deadline) {
      const duplicates = ids.reduce((sum, id) => sum + Math.max(0, (counts[id] ?? 0) - 1), 0);
      return { ms: Date.now() - started, undelivered, duplicates };
    }
    await sleep(50);
  }
}

/** Waits (at most QUIET_DEADLINE_MS) until `pid` used no CPU for QUIET_MS; answers the ms waited. */
async function quiet(pid) {
  const started = Date.now();
  let last = cpuSeconds(pid);
  let since = Date.now();
  while (Date.now() - since < QUIET_MS && Date.now() - started < QUIET_DEADLINE_MS) {
    await sleep(100);
    const now = cpuSeconds(pid);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return Date.now() - started;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Issue 20's queued intake: the relay answering 202 (no Prefer: wait) against the
 * baseline's synchronous path, rounds alternating; each relay round drained before the
 * next baseline round.
 */
async function queuedScenario(emulator, targets) {
  const { receivers, events, warmup } = QUEUED;
  const relay = targets.find((t) => t.which === 'relay');
  let serial = 0;
  // Every event its own receivers, so that the emulator's counts tell each event apart
  // (ids are at most 32 characters; the emulator lower-cases them).
  const next = (tag, ids) => () => {
    const prefix = `${tag}${serial++}-`;
    for (let i = 0; i < receivers; i++) ids?.push(`${prefix}${i}`);
    return notificationBody(receivers, prefix);
  };
  const deadline = Date.now() + SCENARIO_DEADLINE_MS;
  // Warm-up (not counted), the relay's drained too: the consumer's isolate and the queue.
  const warmIds = [];
  await load(relay, next('qw', warmIds), receivers, warmup, deadline, { wait: false });
  await drain(emulator.url, warmIds, Date.now() + DRAIN_DEADLINE_MS);
  for (const t of targets) if (t !== relay) await load(t, next('bw'), receivers, warmup, deadline);
  await quiet(relay.workerdPid);

  const runs = Object.fromEntries(targets.map((t) => [t.which, []]));
  const perRound = Math.ceil(events / ROUNDS);
  const drains = [];
  const ids = [];
  let relayCpu = 0;
  let quietMs = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...targets].reverse() : targets;
    for (const t of order) {
      if (t === relay) {
        const roundIds = [];
        const cpuBefore = cpuSeconds(relay.workerdPid);
        runs.relay.push(await load(relay, next('q', roundIds), receivers, perRound, deadline, { wait: false }));
        // Only the events sent (a deadline may stop a load early) are waited for.
        ids.push(...roundIds);
        drains.push(await drain(emulator.url, roundIds, Date.now() + DRAIN_DEADLINE_MS));
        // The writes after the last delivery (index entries deferred, acks) belong to
        // the round too, and the baseline's next round runs beside an idle relay.
        quietMs += await quiet(relay.workerdPid);
        relayCpu += cpuSeconds(relay.workerdPid) - cpuBefore;
      } else {
        runs[t.which].push(await load(t, next('b'), receivers, perRound, deadline));
      }
    }
  }
  const queued = { receivers, events_per_worker: perRound * ROUNDS, workers: {} };
  for (const [which, list] of Object.entries(runs)) queued.workers[which] = summary(list);
  const sent = runs.relay.reduce((s, l) => s + l.issued, 0);
  const undelivered = drains.reduce((s, d) => s + d.undelivered, 0);
  Object.assign(queued.workers.relay, {
    // The relay's answers are 202s: its p50/p99/events/s above are the intake's.
    answer: 202,
    workerd_cpu_ms_per_event_intake: queued.workers.relay.workerd_cpu_ms_per_event,
    // Intake + drain: each round from its first request to the end of its drain, once
    // workerd has been idle for QUIET_MS (that idle time included: workerd idles at 0).
    workerd_cpu_ms_per_event: (relayCpu * 1000) / sent,
    receivers_sent: ids.length,
    receivers_undelivered: undelivered,
    all_delivered: undelivered === 0 && ids.length === sent * receivers,
    duplicate_deliveries: drains.reduce((s, d) => s + d.duplicates, 0),
    drain_ms_total: drains.reduce((s, d) => s + d.ms, 0),
    drain_ms_max: Math.max(...drains.map((d) => d.ms)),
    drain_deadline_ms: DRAIN_DEADLINE_MS,
    quiet_ms_total: quietMs,
  });
  return queued;
}

let output;
let failed;
try {
  output = await main();
} catch (e) {
  failed = e;
} finally {
  await stopAll();
}
if (failed) {
  process.stderr.write(`bench/worker.mjs: ${failed.stack ?? failed}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(output)}\n`);
