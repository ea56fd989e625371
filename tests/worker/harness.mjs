// Test harness for the relay: the built Workers (worker/build and
// hooks/build, made by scripts/build-worker) in real workerd through Miniflare, configured from
// wrangler.toml (Durable Objects, queues, vars) the way `wrangler dev` is,
// plus Standard Webhooks signing with node:crypto, independent of the Rust
// implementation.
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
 * in `logs` (and passed to `onLog`) so tests can inspect log lines.
 */
export async function startRelay(bindings = {}, { persistTo, onLog } = {}) {
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
  // The relay and its hooks Worker (webhook routes), each from its own
  // wrangler.toml, in one workerd; both get the test's bindings.
  const worker = (config, scriptPath) => ({
    ...unstable_getMiniflareWorkerOptions(config).workerOptions,
    name: unstable_readConfig({ config }).name,
    modules: true,
    scriptPath,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    bindings: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)),
  });
  const relay = worker('wrangler.toml', 'worker/build/index.js');
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [
      { ...relay, serviceBindings: { ...relay.serviceBindings, HOOKS: 'yunxin-edge-hooks' } },
      worker('hooks/wrangler.toml', 'hooks/build/index.js'),
    ],
    ...(persistTo ? { defaultPersistRoot: persistTo } : {}),
    handleRuntimeStdio: (stdout, stderr) => {
      collect(stdout);
      collect(stderr);
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, logs, close: () => mf.dispose() };
}

/** Standard Webhooks signature of `body` (a string), by default under the relay's secret. */
export function sign(body, { secret = WEBHOOK_SECRET, id, timestamp }) {
  return signWebhook(body, { secret, id, timestamp });
}

/**
 * POSTs a signed event, by default with `Prefer: wait` (deliver before
 * answering; `wait: false` for the queued path). `overrides` may replace any
 * header (undefined drops it), the body text, the secret, the id, or shift
 * the timestamp by `skewSeconds`.
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
  return { id, ...(await request(`${relayUrl}/v1/notifications`, { method: overrides.method ?? 'POST', headers, body })) };
}

/**
 * Sends a request (headers set to `undefined` are left out) and reads the
 * answer: `{ status, headers, json, text }`, `json` undefined when the body
 * is not JSON.
 */
export async function request(url, { method = 'POST', headers = {}, body } = {}) {
  const sent = Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined));
  const response = await fetch(url, { method, headers: sent, body });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
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
