// Test harness for the relay: the built Worker (worker/build, made by
// scripts/build-worker) in real workerd through Miniflare, configured from
// wrangler.toml (Durable Objects, queues, vars) the way `wrangler dev` is,
// plus Standard Webhooks signing with node:crypto, independent of the Rust
// implementation.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler';
import { signWebhook, webhookHeaders } from '../../scripts/lib/webhook.mjs';

export const APP_KEY = 'relay-test-app';
export const APP_SECRET = 'relay-test-app-secret-值';
export const WEBHOOK_SECRET = `whsec_${Buffer.from('relay-test-webhook-key').toString('base64')}`;

/**
 * Starts the built relay on an ephemeral loopback port. `bindings` override
 * wrangler.toml's [vars] and the test credentials (never .dev.vars); a
 * binding set to `undefined` is left out. With `persistTo`, Durable Object
 * and queue state survive a restart. Everything workerd prints is collected
 * in `logs` (and passed to `onLog`) so tests can inspect log lines. `options`
 * adds Miniflare options to the Worker, `workers` adds Workers beside it
 * (test stand-ins only: the Worker itself binds no other Worker).
 */
export async function startRelay(bindings = {}, { persistTo, onLog, options = {}, workers = [] } = {}) {
  const all = {
    ...unstable_readConfig({ config: 'wrangler.toml' }).vars,
    YUNXIN_APP_KEY: APP_KEY,
    YUNXIN_APP_SECRET: APP_SECRET,
    WEBHOOK_SECRET,
    MAX_RECEIVERS_PER_EVENT: '10000',
    ...bindings,
  };
  const logs = [];
  const collect = (stream) => {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const lines = chunk.split('\n').filter(Boolean);
      logs.push(...lines);
      if (onLog) lines.forEach(onLog);
    });
  };
  const relay = {
    ...unstable_getMiniflareWorkerOptions('wrangler.toml').workerOptions,
    name: unstable_readConfig({ config: 'wrangler.toml' }).name,
    modules: true,
    scriptPath: 'worker/build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    bindings: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)),
    ...options,
  };
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [relay, ...workers],
    ...(persistTo ? { defaultPersistRoot: persistTo } : {}),
    handleRuntimeStdio: (stdout, stderr) => {
      collect(stdout);
      collect(stderr);
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, logs, close: () => mf.dispose() };
}

/**
 * Starts the relay as a process of its own (relay-process.mjs) on the state
 * persisted in `persistTo`, so that a test can kill it hard and start it
 * again: `kill()` sends SIGKILL to its process group (node and its workerd;
 * Miniflare traps SIGTERM), and runs when test `t` ends in any case.
 */
export async function spawnRelay(t, { persistTo, bindings }) {
  const child = spawn(process.execPath, ['tests/worker/relay-process.mjs'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, RELAY_PERSIST_TO: persistTo, RELAY_BINDINGS: JSON.stringify(bindings) },
  });
  const url = await new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      const line = chunk.split('\n').find((l) => l.startsWith('http://'));
      if (line) resolve(line.trim());
    });
    child.on('exit', (code) => reject(new Error(`relay process exited with ${code}`)));
  });
  const kill = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  t.after(kill);
  return { url, kill };
}

/** Standard Webhooks signature of `body` (a string), by default under the relay's secret. */
export function sign(body, { secret = WEBHOOK_SECRET, id, timestamp }) {
  return signWebhook(body, { secret, id, timestamp });
}

/**
 * POSTs a signed event, by default with `Prefer: wait` (deliver before
 * answering; `wait: false` for the queued path). `overrides` may replace any
 * header (undefined drops it), the body text, the secret, the id, or shift
 * the timestamp by `skewSeconds`; `raw` sends it over a plain socket
 * (see `rawRequest`).
 */
export async function postEvent(relayUrl, notification, overrides = {}) {
  const body = overrides.body ?? JSON.stringify(notification);
  const signed = webhookHeaders(overrides.signedBody ?? body, {
    secret: overrides.secret ?? WEBHOOK_SECRET,
    id: overrides.id,
    timestamp: String(Math.floor(Date.now() / 1000) + (overrides.skewSeconds ?? 0)),
  });
  const id = signed['webhook-id'];
  const headers = {
    'content-type': 'application/json',
    ...signed,
    ...(overrides.wait === false ? {} : { prefer: 'wait' }),
    ...overrides.headers,
  };
  return { id, ...(await request(`${relayUrl}/v1/notifications`, { method: overrides.method ?? 'POST', headers, body, raw: overrides.raw })) };
}

/**
 * Sends a request (headers set to `undefined` are left out) and reads the
 * answer: `{ status, headers, json, text }`, `json` undefined when the body
 * is not JSON.
 */
export async function request(url, { method = 'POST', headers = {}, body, raw = false } = {}) {
  const sent = Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined));
  if (raw) return rawRequest(url, { method, headers: sent, body });
  const response = await fetch(url, { method, headers: sent, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: parseJson(text), text };
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Sends one HTTP/1.1 request over a plain socket and resolves to the first
 * answer: `{ status, headers, json, text, ms }`. For a body the relay refuses
 * before reading it (its Content-Length is over the limit): the relay
 * answers early and closes, and a client still writing the body gets a
 * reset that may destroy the answer it had been sent (with `fetch`, and
 * with a socket). So the body is held back until an answer came or
 * `holdMs` passed, as a client sending `Expect: 100-continue` would. A
 * `content-length` in `headers` is sent as given (it may lie); otherwise it
 * is the body's length.
 */
export function rawRequest(url, { method = 'POST', headers = {}, body = '', timeoutMs = 10_000, holdMs = 2_000 } = {}) {
  const { hostname, port, pathname, search } = new URL(url);
  const bytes = Buffer.from(body);
  const names = Object.keys(headers).map((name) => name.toLowerCase());
  const head = [
    `${method} ${pathname}${search} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ...(names.includes('content-length') ? [] : [`Content-Length: ${bytes.length}`]),
    'Connection: close',
  ];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answer = Buffer.alloc(0);
    let done = false;
    const finish = (error, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      error ? reject(error) : resolve(value);
    };
    // The answer is complete once its Content-Length is in, or the socket ends.
    const parse = (ended) => {
      const text = answer.toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return ended && finish(new Error(`no answer: ${JSON.stringify(text)}`));
      const lines = text.slice(0, end).split('\r\n');
      const status = Number(lines[0].match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
      const answerHeaders = new Headers(lines.slice(1).map((line) => line.split(/:\s*(.*)/s).slice(0, 2)));
      const length = Number(answerHeaders.get('content-length') ?? NaN);
      const rest = answer.subarray(Buffer.byteLength(text.slice(0, end + 4)));
      if (!ended && !(rest.length >= length)) return;
      const bodyText = rest.subarray(0, Number.isNaN(length) ? rest.length : length).toString('utf8');
      finish(null, { status, headers: answerHeaders, json: parseJson(bodyText), text: bodyText, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      if (bytes.length) {
        const held = setTimeout(() => answer.length || socket.write(bytes), holdMs);
        socket.once('close', () => clearTimeout(held));
      }
    });
    socket.on('data', (chunk) => {
      answer = Buffer.concat([answer, chunk]);
      parse(false);
    });
    socket.on('end', () => parse(true));
    socket.on('close', () => parse(true));
    // Writing after the relay answered and closed is expected; what was
    // answered is still read above, or `close` says nothing was.
    socket.on('error', (error) => {
      if (!['EPIPE', 'ECONNRESET'].includes(error.code)) finish(error);
    });
  });
}

/** A notification from `bot` to `n` receivers named `${prefix}${i}`. */
export function notification(n, { prefix = 'user', content = 'deploy finished' } = {}) {
  return {
    sender_id: 'bot',
    receiver_ids: Array.from({ length: n }, (_, i) => `${prefix}${i}`),
    content,
  };
}

/** GETs an event's status with the bearer token, or with `headers` instead. */
export async function eventStatus(relayUrl, id, { token, headers } = {}) {
  const response = await fetch(`${relayUrl}/v1/events/${id}`, {
    headers: headers ?? (token ? { authorization: `Bearer ${token}` } : {}),
  });
  return { status: response.status, json: await response.json() };
}

/** Polls `check` every 200 ms until it returns a truthy value, or throws after `ms`. */
export async function eventually(check, { ms = 60_000, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
