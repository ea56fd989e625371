// Runs one Worker in workerd (Miniflare) as its own process for bench/worker.mjs, so
// that the load generator, the emulator and each Worker's host do not share an event
// loop, and so that workerd's CPU time can be read from /proc on its own.
//
//   node bench/worker-host.mjs relay|baseline      (cwd: the repository root)
//
// Bindings come as JSON in BENCH_BINDINGS. Prints one line once ready,
// `bench-host {"url","workerdPid","hostPid"}` (wrangler may print other lines before it).
// Stops (mf.dispose(), which waits for workerd) when stdin closes or on SIGTERM/SIGINT,
// and by itself after BENCH_HOST_MAX_SECS (default 900) whatever happens.
import { readdirSync, readFileSync } from 'node:fs';
import { Miniflare } from 'miniflare';
import { startRelay } from '../tests/worker/harness.mjs';

const which = process.argv[2];
const bindings = JSON.parse(process.env.BENCH_BINDINGS ?? '{}');
// Worker log lines are read and dropped: keeping them would grow this process.
const drain = (stream) => {
  stream.on('data', () => {});
};

let close;
if (which === 'relay') {
  const relay = await startRelay(bindings, { onLog: () => {} });
  // startRelay keeps every log line; a bounded run keeps few, but empty it anyway.
  const trim = setInterval(() => relay.logs.splice(0), 1000);
  trim.unref();
  close = relay.close;
  announce(relay.url);
} else if (which === 'baseline') {
  const mf = new Miniflare({
    modules: true,
    scriptPath: 'bench/baseline-worker/index.js',
    compatibilityDate: '2026-04-01',
    bindings,
    host: '127.0.0.1',
    port: 0,
    handleRuntimeStdio: (stdout, stderr) => {
      drain(stdout);
      drain(stderr);
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  close = () => mf.dispose();
  announce(url);
} else {
  process.stderr.write('usage: node bench/worker-host.mjs relay|baseline\n');
  process.exit(2);
}

/** The pid of the workerd process Miniflare started: our child named workerd. */
function workerdPid() {
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === process.pid && comm.startsWith('workerd')) return Number(entry);
  }
  return null;
}

function announce(url) {
  process.stdout.write(`bench-host ${JSON.stringify({ url, workerdPid: workerdPid(), hostPid: process.pid })}\n`);
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
setTimeout(stop, Number(process.env.BENCH_HOST_MAX_SECS ?? 900) * 1000).unref();
// Keep the process alive while waiting (stdin may already be closed: /dev/null).
setInterval(() => {}, 1 << 30);
