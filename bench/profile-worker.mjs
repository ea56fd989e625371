// CPU profile of a Worker inside workerd, for BENCHMARKS.md (not part of bench/run):
// the Worker runs under Miniflare with workerd's inspector on, V8's sampling profiler
// is started over the DevTools protocol, a bounded number of events is sent, and the
// functions with the most self time are printed (Rust functions keep their names: the
// relay's .wasm has a name section).
//
//   node bench/profile-worker.mjs relay|baseline [receivers=1] [events=300] [out.cpuprofile]
//
// Everything on 127.0.0.1; the emulator runs in this process; stopped at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import WebSocket from 'ws';
import { startEmulator } from '../emulator/index.mjs';
import { webhookHeaders } from '../scripts/lib/webhook.mjs';

const [which = 'relay', receiversArg = '1', eventsArg = '300', out] = process.argv.slice(2);
const receivers = Number(receiversArg);
const events = Math.min(Number(eventsArg), 2000);
const APP_KEY = 'bench-app';
const APP_SECRET = 'bench-app-secret';
const WEBHOOK_SECRET = `whsec_${Buffer.from('bench-webhook-key-0123456789').toString('base64')}`;

// Miniflare leaves a directory in the temporary directory: use one of ours, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'yunxin-profile-'));
process.env.TMPDIR = scratch;
const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
const bindings = {
  YUNXIN_APP_KEY: APP_KEY,
  YUNXIN_APP_SECRET: APP_SECRET,
  WEBHOOK_SECRET,
  YUNXIN_BASE_URL: emu.url,
  MAX_RECEIVERS_PER_EVENT: '10000',
  UPSTREAM_TIMEOUT_MS: '10000',
  // As bench/worker.mjs: a quota far above the load (the baseline has no pacing).
  YUNXIN_RATE_PER_MINUTE: '600000',
};
const common = {
  host: '127.0.0.1',
  port: 0,
  inspectorPort: 0,
  modules: true,
  bindings,
  handleRuntimeStdio: (a, b) => {
    a.resume();
    b.resume();
  },
};
const options =
  which === 'relay'
    ? {
        ...unstable_getMiniflareWorkerOptions('wrangler.toml').workerOptions,
        ...common,
        scriptPath: 'worker/build/index.js',
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
      }
    : { ...common, name: 'baseline', scriptPath: 'bench/baseline-worker/index.js', compatibilityDate: '2026-04-01' };
const mf = new Miniflare(options);
const hardStop = setTimeout(async () => {
  await mf.dispose();
  await emu.close();
  rmSync(scratch, { recursive: true, force: true });
  process.exit(3);
}, 300_000);

try {
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const inspector = await mf.getInspectorURL();
  const targets = await (await fetch(`http://${inspector.host}/json/list`)).json();
  // The user Worker's isolate ("core:user:<name>"), not Miniflare's entry Worker.
  const target = targets.find((t) => t.id?.startsWith('core:user:'));
  if (!target) throw new Error(`no user Worker among ${targets.map((t) => t.id)}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });

  const body = JSON.stringify({
    sender_id: 'bot',
    receiver_ids: Array.from({ length: receivers }, (_, i) => `user${i}`),
    content: 'deploy finished',
  });
  const post = async () => {
    const r = await fetch(`${url}/v1/notifications`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...webhookHeaders(body, { secret: WEBHOOK_SECRET }),
        prefer: 'wait',
      },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    await r.text();
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
  };
  const run = async (n) => {
    let issued = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (issued < n) {
          issued++;
          await post();
        }
      }),
    );
  };

  await run(Math.min(30, events)); // warm-up
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 100 });
  await send('Profiler.start');
  const started = Date.now();
  await run(events);
  const elapsed = Date.now() - started;
  const { result } = await send('Profiler.stop');
  ws.close();
  const profile = result.profile;
  if (out) writeFileSync(out, JSON.stringify(profile));

  // Self time per function, from the samples.
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Each sample weighs the time since the previous one (µs), as DevTools counts it.
  const counts = new Map();
  profile.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const self = new Map();
  for (const [id, c] of counts) {
    const { functionName, url: src, lineNumber } = byId.get(id).callFrame;
    const key = `${functionName || '(anonymous)'}${src ? ` ${src.split('/').pop()}:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + c);
  }
  // The same samples by kind of code.
  const kinds = new Map();
  const kindOf = ({ functionName: fn, url: src }) => {
    if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') return fn;
    if (fn === 'wasm-to-js' || fn.startsWith('js-to-wasm')) return 'JS <-> wasm transitions';
    if (/\.wasm/.test(src)) return 'Rust compiled to wasm';
    if (which === 'relay' && /index\.js$/.test(src)) return 'wasm-bindgen / worker-build JS glue (index.js)';
    if (/index\.js$/.test(src)) return 'the Worker\'s JavaScript (index.js)';
    if (src.startsWith('node-internal:')) return 'runtime JS (node-internal: console.log formatting...)';
    return 'runtime built-ins (fetch, Request, Response, crypto, streams...)';
  };
  for (const [id, c] of counts) {
    const kind = kindOf(byId.get(id).callFrame);
    kinds.set(kind, (kinds.get(kind) ?? 0) + c);
  }
  const perEvent = (us) => `${(us / 1000 / events).toFixed(3)} ms/event`;
  console.log(
    `${which}, ${receivers} receiver(s)/event, ${events} events in ${elapsed} ms; ` +
      `${profile.samples.length} samples of the Worker's isolate over ${(total / 1000).toFixed(0)} ms`,
  );
  console.log('by kind of code (time while sampling, per event):');
  for (const [kind, c] of [...kinds].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${((100 * c) / total).toFixed(1).padStart(5)} %  ${perEvent(c).padStart(16)}  ${kind}`);
  }
  console.log('by function (self time):');
  for (const [key, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`  ${((100 * c) / total).toFixed(1).padStart(5)} %  ${key.length > 120 ? `${key.slice(0, 117)}...` : key}`);
  }
} finally {
  clearTimeout(hardStop);
  await mf.dispose();
  await emu.close();
  rmSync(scratch, { recursive: true, force: true });
}
