// Cold start: the first event of a fresh workerd isolate, the Worker (worker/build) against
// the hand-written JavaScript Worker (bench/baseline-worker), each started afresh through
// Miniflare several times, against the Yunxin emulator, all on 127.0.0.1.
//
//   node bench/coldstart.mjs [--quick]      prints one JSON object on stdout
//
// workerd compiles every Worker's modules and runs their top level (for ours: compiling
// the .wasm and instantiating it) while it starts, before it listens, so a Worker's load
// time is inside `await mf.ready`, together with the workerd process's own start-up. And
// before workerd starts, Miniflare (in this process) reads the modules and serialises them
// into workerd's configuration, which takes longer the bigger they are: local tooling,
// not on Cloudflare. To separate the three, the moment Miniflare spawns workerd is taken
// (child_process.spawn is wrapped), and each Worker is compared with a stub of the same
// shape: the same Miniflare options (bindings, Durable Objects, queues: the same services
// for workerd to set up), with a few lines of JavaScript in place of the Worker's script.
// Per start:
//
//   prepare = new Miniflare(...) → workerd spawned         (Miniflare building the configuration)
//   ready   = workerd spawned → mf.ready resolved         (workerd's start-up + the Worker's load)
//   first   = mf.ready → the first event's whole answer    (sent at once: the isolate's first request)
//   warm    = the second event, for comparison
// and over the rounds (medians):
//   load    = ready(Worker) − ready(its stub)
//   cold    = load (0 if below 0: a small Worker's load is within the start-up's noise) + first
//   local   = cold + prepare(Worker) − prepare(its stub)   (what a local start adds)
//
// The Worker runs as tests/worker/harness.mjs `startRelay` runs it: one Worker, configured
// from wrangler.toml, whose Durable Objects (the event store, the pacer, the event index)
// are its own classes and whose bundle holds the webhook routes' template engine and the
// dashboard (issue 18). Before, the routes and the index were two more Workers (hooks/,
// ops/) beside the relay in the same workerd, and a further row loaded the routes' Worker
// too; one bundle now loads whatever the first request is.
//
// The event: POST /v1/notifications, 1 receiver, Standard Webhooks signed, `Prefer: wait`
// (answered once the call reached the emulator), which must be answered 200 with the
// receiver delivered. Rounds alternate the order (relay, relay stub, baseline, baseline
// stub, then reversed); medians over rounds are reported. workerd's CPU time (all its
// threads, from /proc) is read at mf.ready and after the first answer: the same split,
// cpu load = median CPU at ready − the stub's (0 if below), plus the median CPU of the
// first event (after − at ready, in the same process).
import childProcess from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler';
import { startEmulator } from '../emulator/index.mjs';
import { webhookHeaders } from '../scripts/lib/webhook.mjs';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 15;
const APP_KEY = 'bench-app';
const APP_SECRET = 'bench-app-secret';
const WEBHOOK_SECRET = `whsec_${Buffer.from('bench-webhook-key-0123456789').toString('base64')}`;
const REQUEST_TIMEOUT_MS = 30_000;
const TOTAL_DEADLINE_MS = 600_000;

// Miniflare leaves a directory in its process's temporary directory: ours, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'yunxin-coldstart-'));
process.env.TMPDIR = scratch;

const config = unstable_readConfig({ config: 'wrangler.toml' });

/**
 * A script that exports what the Worker exports, doing nothing: its Durable Object classes
 * (those wrangler.toml binds, so that the stub keeps the Worker's shape as classes are
 * added) and a default export with its handlers. Given as text: Miniflare names a module
 * by its path from the working directory, which a file elsewhere cannot have.
 */
function stubOf({ durable_objects: objects }) {
  const classes = [...new Set((objects?.bindings ?? []).map((binding) => binding.class_name))];
  const lines = classes.map((name) => `export class ${name} { constructor(state, env) {} fetch() { return new Response('stub'); } }`);
  lines.push(`export default { fetch() { return new Response('stub'); }, queue() {} };`);
  return { script: `${lines.join('\n')}\n` };
}
const baselineStub = { script: `export default { fetch() { return new Response('stub'); } };\n` };
const file = (scriptPath) => ({ scriptPath });

/** Miniflare options of the Worker, as `startRelay` builds them, with the given script. */
function relayOptions(bindings, script) {
  return {
    workers: [
      {
        ...unstable_getMiniflareWorkerOptions('wrangler.toml').workerOptions,
        name: config.name,
        modules: true,
        ...script,
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
        bindings: { ...config.vars, ...bindings },
      },
    ],
  };
}

/** Miniflare options of the JavaScript baseline, as bench/worker-host.mjs builds them. */
function baselineOptions(bindings, script) {
  return { modules: true, ...script, compatibilityDate: '2026-04-01', bindings };
}

/**
 * CPU time of a process's threads, ms: the sum of each live thread's run time from
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds, unlike /proc/<pid>/stat's 10 ms ticks).
 */
function cpuMs(pid) {
  if (!pid) return NaN;
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {} // a thread that just ended
    }
  } catch {
    return NaN;
  }
  return ns / 1e6;
}

// The workerd process Miniflare starts, and when: Miniflare calls `child_process.spawn`
// (the module's property, at call time) once its configuration is serialised.
let spawned = null;
const realSpawn = childProcess.spawn;
childProcess.spawn = function spawn(command, ...rest) {
  const at = process.hrtime.bigint();
  const child = realSpawn.call(this, command, ...rest);
  if (/workerd/.test(String(command))) spawned = { at, pid: child.pid };
  return child;
};

const body = JSON.stringify({ sender_id: 'bot', receiver_ids: ['user0'], content: 'deploy finished' });

/** One signed event, `Prefer: wait`; throws unless answered 200 with the receiver delivered. */
async function postEvent(url) {
  const response = await fetch(`${url}/v1/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...webhookHeaders(body, { secret: WEBHOOK_SECRET }), prefer: 'wait' },
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let delivered;
  try {
    delivered = JSON.parse(text).delivered;
  } catch {}
  if (response.status !== 200 || delivered?.length !== 1) {
    throw new Error(`the event was answered ${response.status} ${text.slice(0, 300)}`);
  }
}

const ms = (from) => Number(process.hrtime.bigint() - from) / 1e6;

/** One fresh start: { prepare_ms, ready_ms, first_ms, warm_ms, cpu_ready_ms, cpu_first_ms }; stubs stop at ready. */
async function start(options, { stub }) {
  let mf;
  let runtimeOutput = '';
  try {
    spawned = null;
    const t0 = process.hrtime.bigint();
    mf = new Miniflare({
      ...options,
      host: '127.0.0.1',
      port: 0,
      handleRuntimeStdio: (stdout, stderr) => {
        // Kept only to explain a start that fails.
        for (const stream of [stdout, stderr]) {
          stream.setEncoding('utf8');
          stream.on('data', (chunk) => {
            if (runtimeOutput.length < 20_000) runtimeOutput += chunk;
          });
        }
      },
    });
    const url = (await mf.ready).toString().replace(/\/$/, '');
    const readyAt = process.hrtime.bigint();
    if (!spawned) throw new Error('did not see Miniflare spawn workerd (has Miniflare changed how it starts it?)');
    const prepareMs = Number(spawned.at - t0) / 1e6;
    const readyMs = Number(readyAt - spawned.at) / 1e6;
    const pid = spawned.pid;
    const cpuReady = cpuMs(pid);
    if (stub) return { prepare_ms: prepareMs, ready_ms: readyMs, cpu_ready_ms: cpuReady };
    const t1 = process.hrtime.bigint();
    await postEvent(url);
    const firstMs = ms(t1);
    const cpuFirst = cpuMs(pid);
    const t2 = process.hrtime.bigint();
    await postEvent(url);
    return {
      prepare_ms: prepareMs,
      ready_ms: readyMs,
      first_ms: firstMs,
      warm_ms: ms(t2),
      cpu_ready_ms: cpuReady,
      cpu_first_ms: cpuFirst,
    };
  } catch (e) {
    throw new Error(`${stub ? 'a stub' : 'a Worker'} failed: ${e.message}\nworkerd printed:\n${runtimeOutput}`, { cause: e });
  } finally {
    // dispose() rethrows a failed start's error: the one above says more.
    await mf?.dispose().catch(() => {});
  }
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const emulator = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  try {
    const bindings = {
      YUNXIN_APP_KEY: APP_KEY,
      YUNXIN_APP_SECRET: APP_SECRET,
      WEBHOOK_SECRET,
      YUNXIN_BASE_URL: emulator.url,
      MAX_RECEIVERS_PER_EVENT: '10000',
      UPSTREAM_TIMEOUT_MS: '10000',
      // As in bench/worker.mjs: the quota far above the load.
      YUNXIN_RATE_PER_MINUTE: '600000',
    };
    // Each start, and the stub a Worker's start-up is compared with.
    const starts = {
      relay: { options: relayOptions(bindings, file('worker/build/index.js')), stub: 'relay_stub' },
      relay_stub: { options: relayOptions(bindings, stubOf(config)) },
      baseline: { options: baselineOptions(bindings, file('bench/baseline-worker/index.js')), stub: 'baseline_stub' },
      baseline_stub: { options: baselineOptions(bindings, baselineStub) },
    };
    const names = Object.keys(starts);
    const runs = Object.fromEntries(names.map((name) => [name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of r % 2 ? [...names].reverse() : names) {
        runs[name].push(await start(starts[name].options, { stub: !starts[name].stub }));
      }
    }
    const result = { rounds: ROUNDS, first_request: 'POST /v1/notifications, 1 receiver, Prefer: wait', workers: {} };
    for (const [name, list] of Object.entries(runs)) {
      const m = {};
      for (const key of Object.keys(list[0])) m[key] = median(list.map((x) => x[key]));
      const stub = starts[name].stub;
      if (stub) {
        // The Worker's part of the start-up, and with the first event, the cold start.
        const s = runs[stub];
        m.stub_ready_ms = median(s.map((x) => x.ready_ms));
        m.stub_prepare_ms = median(s.map((x) => x.prepare_ms));
        // The Worker's load in workerd. A small Worker's load can be below the start-up's
        // noise and read < 0: counted as 0.
        m.load_ms = m.ready_ms - m.stub_ready_ms;
        m.cold_ms = Math.max(0, m.load_ms) + m.first_ms;
        // What Miniflare adds before workerd starts, for this Worker's modules.
        m.prepare_extra_ms = m.prepare_ms - m.stub_prepare_ms;
        m.local_cold_ms = m.cold_ms + Math.max(0, m.prepare_extra_ms);
        // CPU: the load as above; the first event's in the same process (precise).
        m.cpu_load_ms = m.cpu_ready_ms - median(s.map((x) => x.cpu_ready_ms));
        m.cpu_first_event_ms = median(list.map((x) => x.cpu_first_ms - x.cpu_ready_ms));
        m.cpu_cold_ms = Math.max(0, m.cpu_load_ms) + m.cpu_first_event_ms;
      }
      result.workers[name] = { median: m, runs: list };
    }
    return result;
  } finally {
    await emulator.close();
  }
}

const hardStop = setTimeout(() => {
  process.stderr.write(`bench/coldstart.mjs: over ${TOTAL_DEADLINE_MS} ms, stopping\n`);
  rmSync(scratch, { recursive: true, force: true });
  process.exit(3);
}, TOTAL_DEADLINE_MS);
hardStop.unref();

let output;
let failed;
try {
  output = await main();
} catch (e) {
  failed = e;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (failed) {
  process.stderr.write(`bench/coldstart.mjs: ${failed.stack ?? failed}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(output)}\n`);
