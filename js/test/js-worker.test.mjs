// examples/js-worker in real workerd (wrangler's unstable_dev, which bundles the Worker
// the way `wrangler deploy` does: the package's `workerd` entry, its .wasm as a module),
// forwarding to the Yunxin emulator on 127.0.0.1. Ephemeral ports only; the workerd
// process is stopped and checked gone at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

import { startEmulator } from '../../emulator/index.mjs';
import { PKG_DIR, ROOT, linkPackage } from '../test-support/package.mjs';

// No telemetry, and no fetch of Cloudflare's request metadata: loopback traffic only.
process.env.WRANGLER_SEND_METRICS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
const { unstable_dev } = await import('wrangler');

const EXAMPLE = join(ROOT, 'examples', 'js-worker');
const APP_KEY = 'js-worker-app';
const APP_SECRET = 'js-worker-秘密';
const RELAY_TOKEN = 'relay-token-for-tests';
const receivers = (n, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

// What `npm install` in examples/js-worker does for its `file:` dependency: a link to
// js/pkg, so that wrangler resolves `yunxin-edge` through the package's exports map.
function linkIntoExample() {
  linkPackage();
  const link = join(EXAMPLE, 'node_modules', 'yunxin-edge');
  const target = relative(dirname(link), PKG_DIR);
  try {
    if (lstatSync(link).isSymbolicLink() && readlinkSync(link) === target) return;
    rmSync(link, { recursive: true, force: true });
  } catch {
    // not there yet
  }
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(target, link, 'dir');
}

// workerd processes whose parent is this test process.
function ownWorkerdProcesses() {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,comm='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, ppid, comm]) => Number(ppid) === process.pid && comm?.startsWith('workerd'));
}

test('examples/js-worker forwards notifications to Yunxin from real workerd', { timeout: 180_000 }, async (t) => {
  linkIntoExample();
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  t.after(() => emu.close());

  const worker = await unstable_dev(join(EXAMPLE, 'src', 'index.js'), {
    config: join(EXAMPLE, 'wrangler.toml'),
    ip: '127.0.0.1',
    port: 0,
    inspectorPort: 0,
    local: true,
    persist: false,
    logLevel: 'warn',
    vars: {
      YUNXIN_BASE_URL: emu.url,
      YUNXIN_APP_KEY: APP_KEY,
      YUNXIN_APP_SECRET: APP_SECRET,
      RELAY_TOKEN,
      UPSTREAM_TIMEOUT_MS: '5000',
    },
    experimental: { disableExperimentalWarning: true, disableDevRegistry: true },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await worker.stop();
  };
  t.after(stop);

  const post = (body, headers = {}) =>
    worker.fetch('/notify', {
      method: 'POST',
      headers: { authorization: `Bearer ${RELAY_TOKEN}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  await t.test('1,201 receivers with unknown ones: 207 and the per-receiver report', async () => {
    emu.reset();
    const ids = [...receivers(1197), ...receivers(4, 'ghost')];
    const response = await post({ sender_id: 'ops-bot', receiver_ids: ids, content: { deploy: 'ok' } });
    assert.equal(response.status, 207);
    const report = await response.json();
    assert.equal(report.delivered.length, 1197);
    assert.deepEqual(report.failed.map((f) => [f.account_id, f.error_code, f.retryable]), receivers(4, 'ghost').map((id) => [id, 102404, false]));
    assert.equal(emu.requests().length, 3);
    assert.ok(Object.values(emu.deliveryCounts()).every((n) => n === 1));
    assert.equal(emu.deliveries().length, 1197);
  });

  await t.test('a 502 upstream is retried with the same trace id and delivered once: 200', async () => {
    emu.reset();
    emu.injectFaults({ kind: 'http502', count: 1 });
    const response = await post({ sender_id: 'ops-bot', receiver_ids: ['alice', 'bob'], content: 'hi' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { delivered: ['alice', 'bob'], failed: [], unknown: [], not_attempted: [] });
    const [first, retry] = emu.requests();
    assert.equal(first.httpStatus, 502);
    assert.equal(retry.traceId, first.traceId);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
  });

  await t.test('the same Idempotency-Key twice notifies once', async () => {
    emu.reset();
    const body = { sender_id: 'ops-bot', receiver_ids: ['carol'], content: 'once' };
    for (let i = 0; i < 2; i++) {
      const response = await post(body, { 'idempotency-key': 'evt-123' });
      assert.equal(response.status, 200);
    }
    assert.equal(emu.requests().length, 2);
    assert.equal(emu.requests()[1].replayed, true);
    assert.deepEqual(emu.deliveryCounts(), { carol: 1 });
  });

  await t.test('a rate limit is reported retryable with Retry-After: 60', async () => {
    emu.reset();
    emu.injectFaults({ kind: 'code416', count: 1 });
    const response = await post({ sender_id: 'ops-bot', receiver_ids: ['dave'], content: 'x' });
    assert.equal(response.status, 207);
    assert.equal(response.headers.get('retry-after'), '60');
    assert.equal((await response.json()).retry_after_secs, 60);
  });

  await t.test('invalid notifications are 400 with code, field and limit; nothing is sent', async () => {
    emu.reset();
    const response = await post({ sender_id: 'ops-bot', receiver_ids: ['erin'], content: '网'.repeat(4097) });
    assert.equal(response.status, 400);
    const { error } = await response.json();
    assert.deepEqual([error.code, error.field, error.limit], ['too_long', 'content', 4096]);
    assert.equal((await post('{not json')).status, 400);
    assert.equal(emu.requests().length, 0);
  });

  await t.test('callers need the token; only POST /notify exists', async () => {
    const unauthorized = await post({}, { authorization: 'Bearer wrong' });
    assert.equal(unauthorized.status, 401);
    assert.ok(!(await unauthorized.text()).includes(APP_SECRET));
    assert.equal((await worker.fetch('/notify')).status, 405);
    assert.equal((await worker.fetch('/other', { method: 'POST' })).status, 404);
  });

  await stop();
  assert.deepEqual(ownWorkerdProcesses(), [], 'workerd is still running');
});
