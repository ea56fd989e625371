// The compatibility matrix of the npm package (see ./run for usage).
//
// 1. `npm pack` js/pkg into a fresh scratch directory, `npm ci` the matrix's tools
//    there (./package.json, pinned by ./package-lock.json; --prefer-offline, so a
//    warm npm cache makes it quick) and `npm install` the tarball beside them: one
//    shared node_modules for every target.
// 2. Every target is a folder of the scratch directory, made of the fixture files in
//    ./fixtures/<target> and of the README's code blocks marked
//    `<!-- matrix: <target>/<file> -->`, verbatim: what is tested is what users copy.
// 3. The targets run against one emulator on 127.0.0.1 (emulator/index.mjs), at most
//    MATRIX_JOBS at a time; browser targets share one headless Chromium.
//
// A target passes when the README's example printed or answered what a user would
// check: the receivers delivered, the one unknown account failed. Two targets run what
// is not a README block: `npx`, the package's command-line tool from the tarball, and
// `action`, the GitHub Action's committed bundle (action/dist/index.mjs).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { startEmulator } from '../../emulator/index.mjs';

const MATRIX = dirname(fileURLToPath(import.meta.url));
const ROOT = join(MATRIX, '..', '..');
const PKG = join(ROOT, 'js', 'pkg');
const BIN = join(ROOT, 'node_modules', '.bin');
const JOBS = Number(process.env.MATRIX_JOBS ?? 2);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const APP_KEY = 'matrix-app';
const APP_SECRET = 'matrix-秘密';
const NOTIFICATION = { sender_id: 'ops-bot', receiver_ids: ['alice', 'bob', 'ghost-1'], content: 'deploy finished' };
// What every target must end with for NOTIFICATION: the emulator knows every account
// but `ghost-*` (code 102404, not retryable).
const EXPECTED_REPORT = {
  delivered: ['alice', 'bob'],
  failed: [{ account_id: 'ghost-1', error_code: 102404, error_msg: 'account not exist', retryable: false }],
  unknown: [],
  not_attempted: [],
};
// No telemetry and no fetch of Cloudflare's request metadata: loopback traffic only.
// Set here too, for wrangler runs in this process.
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
const SILENT_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  NEXT_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  PARCEL_WORKERS: '1',
  NO_COLOR: '1',
  FORCE_COLOR: '0',
};

// ---------------------------------------------------------------------------
// Processes: every child in its own process group, stopped by its id at the end
// ---------------------------------------------------------------------------

const children = new Set();

/** Runs a command to completion; rejects with its output when it fails. */
function run(command, args, { cwd, env = {}, timeoutMs = 240_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...SILENT_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => stop(child), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${tail(out)}`));
    });
  });
}

/** Runs a command to completion; resolves to its exit code, stdout and stderr, whatever the code. */
function capture(command, args, { cwd, env = {}, timeoutMs = 240_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...SILENT_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => stop(child), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: code ?? signal, stdout, stderr });
    });
  });
}

/** Starts a server; resolves once `ready` matches its output. */
function serve(command, args, { cwd, env = {}, ready, timeoutMs = 60_000 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...SILENT_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.add(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${command} did not start in time:\n${tail(out)}`)), timeoutMs);
    const onData = (d) => {
      out += d;
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => out });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before it was ready:\n${tail(out)}`));
    });
  });
}

function stop(child) {
  try {
    process.kill(-child.pid, 'SIGTERM'); // its process group: next start's server too
  } catch {
    // already gone
  }
}

function tail(text, lines = 40) {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------
// The scratch project
// ---------------------------------------------------------------------------

/** The README's code blocks marked `<!-- matrix: target/file -->`, by path. */
function readmeFiles() {
  const readme = readFileSync(join(PKG, 'README.md'), 'utf8');
  const files = new Map();
  for (const [, path, code] of readme.matchAll(/<!-- matrix: (\S+) -->\n```\w*\n([\s\S]*?)```/g)) {
    if (files.has(path)) throw new Error(`README: two blocks for ${path}`);
    files.set(path, code);
  }
  return files;
}

async function prepare(scratch) {
  if (!existsSync(join(PKG, 'yunxin_edge_bg.wasm'))) throw new Error('js/pkg is not built: run ./js/build.sh first');
  const npm = (args) => run('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: scratch });
  const packed = JSON.parse(await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], { cwd: PKG }).then(jsonOnly));
  cpSync(join(MATRIX, 'package.json'), join(scratch, 'package.json'));
  cpSync(join(MATRIX, 'package-lock.json'), join(scratch, 'package-lock.json'));
  await npm(['ci']);
  const tarball = join(scratch, packed[0].filename);
  await npm(['install', '--no-save', tarball]);
  // Install scripts stay off (--ignore-scripts) but for bun's, which links its binary
  // (from the @oven/bun-* package npm just installed; nothing is downloaded).
  await run(process.execPath, ['install.js'], { cwd: join(scratch, 'node_modules', 'bun') });

  for (const target of readdirSync(join(MATRIX, 'fixtures'))) {
    cpSync(join(MATRIX, 'fixtures', target), join(scratch, target), { recursive: true });
  }
  // The declarations' lib-es2022-only check of the package tests, against the tarball.
  cpSync(join(ROOT, 'js', 'test', 'types', 'es2022'), join(scratch, 'tsc'), { recursive: true });
  for (const [path, code] of readmeFiles()) {
    mkdirSync(dirname(join(scratch, path)), { recursive: true });
    writeFileSync(join(scratch, path), code);
  }
  return tarball;
}

// npm prints lifecycle noise before the JSON of `npm pack --json` at times.
function jsonOnly(text) {
  return text.slice(text.indexOf('['));
}

// ---------------------------------------------------------------------------
// Checks shared by the targets
// ---------------------------------------------------------------------------

function expectReport(report, what, expectedReport = EXPECTED_REPORT) {
  const actual = JSON.stringify(report);
  const expected = JSON.stringify(expectedReport);
  if (actual !== expected) throw new Error(`${what}: expected ${expected}\n  got ${actual}`);
}

// The README's Node example (to alice, bob and carol) prints one line per outcome.
function expectPrinted(out, what) {
  const expected = 'delivered: alice, bob, carol\n';
  if (!out.endsWith(expected)) throw new Error(`${what}: expected it to print\n${expected}  got\n${tail(out)}`);
}

async function postJson(url, body) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url}: HTTP ${response.status}: ${text.slice(0, 2000)}`);
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

// The environment the README's examples read.
function nodeEnv(ctx) {
  return { YUNXIN_APP_KEY: APP_KEY, YUNXIN_APP_SECRET: APP_SECRET, YUNXIN_BASE_URL: ctx.emulator.url };
}

const TARGETS = {
  async 'node-esm'(ctx) {
    expectPrinted(await run(process.execPath, ['send.mjs'], { cwd: ctx.dir('node'), env: nodeEnv(ctx) }), 'node send.mjs');
  },

  async 'node-cjs'(ctx) {
    expectPrinted(await run(process.execPath, ['send.cjs'], { cwd: ctx.dir('node'), env: nodeEnv(ctx) }), 'node send.cjs');
  },

  async 'esbuild-node'(ctx) {
    // `esbuild --bundle --platform=node`, ESM and CommonJS output, each run from a
    // folder without node_modules: the bundle must carry everything, the wasm included.
    const dir = ctx.dir('node');
    for (const format of ['esm', 'cjs']) {
      const entry = format === 'esm' ? 'send.mjs' : 'send.cjs';
      const out = join(ctx.scratch, `esbuild-node-${format}`, entry);
      await run(join(BIN, 'esbuild'), [entry, '--bundle', '--platform=node', `--format=${format}`, '--log-level=warning', `--outfile=${out}`], {
        cwd: dir,
      });
      const isolated = join(tmpdir(), `yunxin-edge-bundle-${process.pid}-${format}`);
      rmSync(isolated, { recursive: true, force: true });
      mkdirSync(isolated);
      cpSync(out, join(isolated, 'send' + extname(out)));
      try {
        expectPrinted(await run(process.execPath, ['send' + extname(out)], { cwd: isolated, env: nodeEnv(ctx) }), `esbuild --format=${format} bundle`);
      } finally {
        rmSync(isolated, { recursive: true, force: true });
      }
    }
  },

  async bun(ctx) {
    const bun = join(ctx.scratch, 'node_modules', '.bin', 'bun');
    const env = { ...nodeEnv(ctx), BUN_INSTALL_CACHE_DIR: join(ctx.scratch, '.bun-cache') };
    expectPrinted(await run(bun, ['send.mjs'], { cwd: ctx.dir('node'), env }), 'bun send.mjs');
    expectPrinted(await run(bun, ['send.cjs'], { cwd: ctx.dir('node'), env }), 'bun send.cjs');
  },

  async deno(ctx) {
    const deno = join(ctx.scratch, 'node_modules', '.bin', 'deno');
    // The README's command line; `npm:yunxin-edge` resolves from the project's
    // node_modules (Deno's default when there is a package.json).
    const env = { ...nodeEnv(ctx), DENO_DIR: join(ctx.scratch, '.deno'), DENO_NO_UPDATE_CHECK: '1' };
    const out = await run(deno, ['run', '--allow-env', '--allow-net', '--allow-read', 'send.ts'], { cwd: ctx.dir('deno'), env });
    const report = JSON.parse(out.slice(out.indexOf('{')));
    expectReport(report, 'deno run send.ts', { delivered: ['alice', 'bob'], failed: [], unknown: [], not_attempted: [] });
  },

  async workerd(ctx) {
    // wrangler (the repository's) bundles the README's Worker the way `wrangler deploy`
    // does and runs it in workerd.
    const { unstable_dev } = await import('wrangler');
    const dir = ctx.dir('workerd');
    const worker = await unstable_dev(join(dir, 'src', 'index.js'), {
      config: join(dir, 'wrangler.toml'),
      ip: '127.0.0.1',
      port: 0,
      inspectorPort: 0,
      local: true,
      persist: false,
      logLevel: 'warn',
      vars: { YUNXIN_APP_KEY: APP_KEY, YUNXIN_APP_SECRET: APP_SECRET, YUNXIN_BASE_URL: ctx.emulator.url },
      experimental: { disableExperimentalWarning: true, disableDevRegistry: true },
    });
    try {
      const response = await worker.fetch('/', { method: 'POST', body: JSON.stringify(NOTIFICATION) });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${text}`);
      expectReport(JSON.parse(text), 'the Worker');
      const invalid = await worker.fetch('/', { method: 'POST', body: JSON.stringify({ ...NOTIFICATION, content: 'x'.repeat(4097) }) });
      const problem = await invalid.json();
      if (invalid.status !== 400 || problem.error?.code !== 'too_long') throw new Error(`invalid input: ${invalid.status} ${JSON.stringify(problem)}`);
    } finally {
      await worker.stop();
    }
  },

  next: (ctx) => nextApp(ctx, []),
  'next-webpack': (ctx) => nextApp(ctx, ['--webpack']),
  express: (ctx) => callbackServer(ctx, 'express'),
  hono: (ctx) => callbackServer(ctx, 'hono'),

  async npx(ctx) {
    // The package's command-line tool from the tarball: `npx yunxin-edge` where the
    // package is installed, and `npx --package <tarball>` from an empty folder (npx
    // installs it on its own; the package has no dependencies to fetch).
    const args = ['send', '--from', 'ops-bot', '--to', NOTIFICATION.receiver_ids.join(','), '--content', NOTIFICATION.content, '--json'];
    const empty = join(ctx.scratch, 'npx-empty');
    mkdirSync(empty);
    const runs = [
      ['npx yunxin-edge', ctx.scratch, ['--no-install', 'yunxin-edge']],
      ['npx --package <tarball> yunxin-edge', empty, ['--yes', '--prefer-offline', '--package', ctx.tarball, 'yunxin-edge']],
    ];
    for (const [what, cwd, npxArgs] of runs) {
      const out = await capture('npx', [...npxArgs, ...args], { cwd, env: nodeEnv(ctx) });
      // Exit 3: ghost-1 is not delivered; the report on stdout, the reason on stderr.
      if (out.code !== 3 || !out.stderr.endsWith('yunxin-edge: 1 of 3 receivers not delivered\n')) {
        throw new Error(`${what}: exit ${out.code}\n${tail(out.stdout)}\n${tail(out.stderr)}`);
      }
      expectReport(JSON.parse(out.stdout), what, { ...EXPECTED_REPORT, calls: 1 });
      if (out.stdout.includes(APP_SECRET) || out.stderr.includes(APP_SECRET)) throw new Error(`${what} printed the secret`);
    }
  },

  async action(ctx) {
    // The GitHub Action's committed bundle, as the runner runs it: node, INPUT_*
    // variables, its outputs and summary written to the files the runner names.
    const workspace = join(ctx.scratch, 'action-workspace');
    mkdirSync(workspace);
    const outputFile = join(workspace, 'github_output');
    const summaryFile = join(workspace, 'github_step_summary');
    writeFileSync(outputFile, '');
    writeFileSync(summaryFile, '');
    const inputs = {
      'app-key': APP_KEY,
      'app-secret': APP_SECRET,
      sender: NOTIFICATION.sender_id,
      receivers: NOTIFICATION.receiver_ids.join('\n'),
      content: NOTIFICATION.content,
      'base-url': ctx.emulator.url,
      'fail-on': 'never',
    };
    const env = { GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    const out = await capture(process.execPath, [join(ROOT, 'action', 'dist', 'index.mjs')], { cwd: workspace, env });
    if (out.code !== 0) throw new Error(`the Action's entry exited ${out.code}:\n${tail(out.stdout)}\n${tail(out.stderr)}`);
    const written = readFileSync(outputFile, 'utf8');
    const report = /^report<<(\S+)\n(.*)\n\1$/m.exec(written)?.[2];
    if (report === undefined) throw new Error(`no report output in GITHUB_OUTPUT:\n${written}`);
    expectReport(JSON.parse(report), "the Action's report output");
    for (const [name, count] of [['delivered', 2], ['failed', 1], ['unknown', 0]]) {
      if (!new RegExp(`^${name}<<(\\S+)\\n${count}\\n\\1$`, 'm').test(written)) throw new Error(`output ${name} is not ${count}:\n${written}`);
    }
    if (!readFileSync(summaryFile, 'utf8').startsWith('### Yunxin notification: 2 of 3 receivers delivered\n')) {
      throw new Error(`the job summary:\n${readFileSync(summaryFile, 'utf8')}`);
    }
  },

  async tsc(ctx) {
    // `tsc --strict` with `lib: ["es2022"]` only: no DOM, no @types/node.
    await run(join(BIN, 'tsc'), ['-p', 'tsconfig.json'], { cwd: ctx.dir('tsc') });
  },

  'browser-vite': (ctx) => browser(ctx, 'vite', [join(ctx.scratch, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn']]),
  'browser-webpack': (ctx) => browser(ctx, 'webpack', [process.execPath, ['webpack-build.mjs']]),
  'browser-parcel': (ctx) =>
    browser(ctx, 'parcel', [join(ctx.scratch, 'node_modules', '.bin', 'parcel'), ['build', 'index.html', '--dist-dir', 'dist', '--no-source-maps', '--no-cache', '--log-level', 'warn']]),
  'browser-rollup': (ctx) => browser(ctx, 'rollup', [join(ctx.scratch, 'node_modules', '.bin', 'rollup'), ['-c', '--silent']], { inline: true }),
  'browser-esbuild': (ctx) =>
    browser(ctx, 'esbuild', [join(BIN, 'esbuild'), ['main.js', '--bundle', '--format=esm', '--log-level=warning', '--outfile=dist/main.js']], {
      inline: true,
    }),
  'browser-bun': (ctx) =>
    browser(ctx, 'bun', [join(ctx.scratch, 'node_modules', '.bin', 'bun'), ['build', 'main.js', '--target=browser', '--outdir=dist']], {
      inline: true,
      env: { BUN_INSTALL_CACHE_DIR: join(ctx.scratch, '.bun-cache') },
    }),
};

// One Next.js app, the README's route handler twice: Node runtime and edge runtime;
// `next build` (Turbopack) or `next build --webpack`, then `next start`.
async function nextApp(ctx, buildFlags) {
  const dir = join(ctx.scratch, buildFlags.includes('--webpack') ? 'next-webpack' : 'next-turbopack');
  cpSync(ctx.dir('next'), dir, { recursive: true });
  const route = readFileSync(join(dir, 'app', 'api', 'notify', 'route.js'), 'utf8');
  mkdirSync(join(dir, 'app', 'api', 'notify-edge'), { recursive: true });
  writeFileSync(join(dir, 'app', 'api', 'notify-edge', 'route.js'), `${route}\nexport const runtime = 'edge';\n`);
  const next = join(ctx.scratch, 'node_modules', '.bin', 'next');
  await run(next, ['build', ...buildFlags], { cwd: dir, timeoutMs: 300_000 });
  const port = await freePort();
  const env = { YUNXIN_APP_KEY: APP_KEY, YUNXIN_APP_SECRET: APP_SECRET, YUNXIN_BASE_URL: ctx.emulator.url };
  const server = await serve(next, ['start', '-H', '127.0.0.1', '-p', String(port)], { cwd: dir, env, ready: /Ready in/ });
  try {
    for (const path of ['/api/notify', '/api/notify-edge']) {
      expectReport(await postJson(`http://127.0.0.1:${port}${path}`, NOTIFICATION), `next start, ${path}`);
    }
  } finally {
    stop(server.child);
  }
}

// The README's callback handler for `framework`, served by node, and the README's
// test client (callbacks/post.mjs, signYunxinCallback) posting to it; then a forgery.
async function callbackServer(ctx, framework) {
  const env = { YUNXIN_APP_KEY: APP_KEY, YUNXIN_APP_SECRET: APP_SECRET };
  const server = await serve(process.execPath, ['server.mjs'], { cwd: ctx.dir(framework), env, ready: /listening on (\S+)/ });
  try {
    const url = server.match[1];
    const out = await run(process.execPath, ['post.mjs'], { cwd: ctx.dir('callbacks'), env: { ...env, SERVER_URL: url } });
    if (out.trim() !== '200') throw new Error(`post.mjs printed ${out}`);
    // The handler saw the parsed body (verifyYunxinCallback returns it).
    for (let i = 0; i < 100 && !server.output().includes('callback: 1\n'); i++) await new Promise((r) => setTimeout(r, 20));
    if (!server.output().includes('callback: 1\n')) throw new Error(`the handler did not log the event:\n${server.output()}`);
    // A body changed after signing is refused.
    const signed = await fetch(`${url}/yunxin/callback`, {
      method: 'POST',
      headers: { AppKey: APP_KEY, CurTime: String(Date.now()), MD5: '0'.repeat(32), CheckSum: '0'.repeat(40) },
      body: '{"eventType":"1"}',
    });
    const text = await signed.text();
    if (signed.status !== 401 || !/callback rejected/.test(text)) throw new Error(`a forged callback got ${signed.status}: ${text}`);
  } finally {
    stop(server.child);
  }
}

// A browser target: the shared page (fixtures/browser: index.html, main.js, the
// README's check.js) bundled by one bundler, served on 127.0.0.1 with the emulator
// behind the same origin, and run in headless Chromium. `inline`: the README says to
// import `yunxin-edge/inline` with this bundler.
async function browser(ctx, name, [command, args], { inline = false, env = {} } = {}) {
  const dir = join(ctx.scratch, `browser-${name}`);
  cpSync(ctx.dir('browser'), dir, { recursive: true });
  if (inline) {
    for (const file of ['main.js', 'check.js']) {
      const path = join(dir, file);
      writeFileSync(path, readFileSync(path, 'utf8').replaceAll("from 'yunxin-edge'", "from 'yunxin-edge/inline'"));
    }
  }
  await run(command, args, { cwd: dir, env });
  if (!existsSync(join(dir, 'dist', 'index.html'))) cpSync(join(dir, 'index.html'), join(dir, 'dist', 'index.html'));
  const site = await staticSite(join(dir, 'dist'), ctx.emulator.url);
  try {
    const page = await (await ctx.chromium()).newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
    try {
      await page.goto(`${site.url}/index.html#${encodeURIComponent(JSON.stringify({ appKey: APP_KEY, appSecret: APP_SECRET }))}`);
      await page.waitForFunction(() => window.matrixResult !== undefined, null, { timeout: 30_000 }).catch(() => {
        throw new Error(`no result from the page:\n${problems.join('\n')}`);
      });
      const result = await page.evaluate(() => window.matrixResult);
      if (result.error) throw new Error(`the page failed: ${result.error}\n${problems.join('\n')}`);
      if (result.check !== '3 receivers, 1 call(s)' || result.invalid !== 'content: `content` must be at most 4096 characters, got 4097') {
        throw new Error(`the README's check(): ${JSON.stringify(result)}`);
      }
      expectReport(result.report, 'send() in the page');
    } finally {
      await page.close();
    }
  } finally {
    await site.close();
  }
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

// Serves `root`; POSTs to Yunxin's path go to the emulator, so that the page calls the
// "Yunxin" of its own origin (the emulator sends no CORS headers).
async function staticSite(root, emulatorUrl) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST') {
      const upstream = http.request(new URL(url.pathname + url.search, emulatorUrl), { method: 'POST', headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
      return;
    }
    const path = normalize(join(root, decodeURIComponent(url.pathname)));
    if (!path.startsWith(root + sep) || !existsSync(path)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function main() {
  const wanted = process.argv.slice(2);
  for (const name of wanted) if (!(name in TARGETS)) throw new Error(`no target ${name} (targets: ${Object.keys(TARGETS).join(', ')})`);
  const names = wanted.length > 0 ? wanted : Object.keys(TARGETS);

  const started = Date.now();
  const scratch = mkdtempSync(join(tmpdir(), 'yunxin-edge-matrix-'));
  const emulator = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, host: '127.0.0.1', port: 0 });
  let browserPromise;
  const ctx = {
    scratch,
    emulator,
    dir: (name) => join(scratch, name),
    chromium: () =>
      (browserPromise ??= (async () => {
        const require = createRequire(join(scratch, 'package.json'));
        const { chromium } = require('playwright-core');
        return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      })()),
  };
  let failures = 0;
  let passed = 0;
  try {
    ctx.tarball = await prepare(scratch);
    console.log(`ok    install                 ${seconds(started)}  (${scratch})`);
    const queue = [...names];
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const begun = Date.now();
        try {
          await TARGETS[name](ctx);
          passed++;
          console.log(`ok    ${name.padEnd(22)}  ${seconds(begun)}`);
        } catch (error) {
          failures++;
          console.log(`FAIL  ${name.padEnd(22)}  ${seconds(begun)}\n${indent(error?.stack ?? String(error))}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, JOBS) }, worker));
  } catch (error) {
    failures++;
    console.log(`FAIL  install                 ${seconds(started)}\n${indent(error?.stack ?? String(error))}`);
  } finally {
    if (browserPromise) await (await browserPromise.catch(() => undefined))?.close();
    await emulator.close();
    for (const child of children) stop(child);
    if (process.env.MATRIX_KEEP === '1') console.log(`scratch directory kept: ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s in all)`);
  console.log(`matrix: ${passed} passed, ${failures} failed`);
  process.exitCode = failures === 0 ? 0 : 1;
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1).padStart(6)} s`;
}

function indent(text) {
  return text.replace(/^/gm, '      ');
}

await main();
