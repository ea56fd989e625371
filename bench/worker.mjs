// Worker throughput, latency and CPU per event: the relay (worker/build, Rust → wasm) and
// the hand-written JavaScript baseline (bench/baseline-worker) in workerd through
// Miniflare, each in its own host process, against one Yunxin emulator process, driven by
// this process's load generator, all on 127.0.0.1.
//
//   node bench/worker.mjs [--quick]      prints one JSON object on stdout
//
// Synchronous path only (`Prefer: wait`): an event is answered once every call reached
// the emulator. Bounded: a fixed number of events per scenario at a fixed concurrency,
// split into rounds that alternate between the two Workers (A B, B A, A B, ...); every request
// has a timeout and every scenario a deadline; every process started here is stopped at
// the end, workerd included (SIGKILL if it outlives its host).
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

/** POSTs one signed event with Prefer: wait; resolves to { ms, ok, status }. */
async function postEvent(url, body, receivers) {
  const headers = {
    'content-type': 'application/json',
    ...webhookHeaders(body, { secret: WEBHOOK_SECRET }),
    prefer: 'wait',
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
    let delivered = -1;
    try {
      delivered = JSON.parse(text).delivered?.length ?? -1;
    } catch {}
    return { ms, ok: response.status === 200 && delivered === receivers, status: response.status };
  } catch (e) {
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, ok: false, status: String(e?.name ?? e) };
  }
}

/** `count` events at `CONCURRENCY` in flight, stopping early at `deadline`. */
async function load(target, body, receivers, count, deadline) {
  const latencies = [];
  const failures = {};
  let issued = 0;
  const cpuBefore = cpuSeconds(target.workerdPid);
  const hostBefore = cpuSeconds(target.hostPid);
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (issued < count && Date.now() < deadline) {
      issued++;
      const r = await postEvent(target.url, body, receivers);
      latencies.push(r.ms);
      if (!r.ok) failures[r.status] = (failures[r.status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
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
    for (const [which, list] of Object.entries(runs)) {
      const latencies = list.flatMap((l) => l.latencies).sort((a, b) => a - b);
      const seconds = list.reduce((s, l) => s + l.seconds, 0);
      const cpu = list.reduce((s, l) => s + l.workerdCpu, 0);
      const hostCpu = list.reduce((s, l) => s + l.hostCpu, 0);
      const failures = {};
      for (const l of list) for (const [k, v] of Object.entries(l.failures)) failures[k] = (failures[k] ?? 0) + v;
      scenario.workers[which] = {
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
    result.scenarios.push(scenario);
  }
  return result;
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
