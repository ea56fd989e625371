// Test harness for the relay: the built Worker (worker/build, made by
// scripts/build-worker) in real workerd through Miniflare, plus Standard
// Webhooks signing with node:crypto, independent of the Rust implementation.
import { randomUUID } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { signWebhook } from '../../scripts/lib/webhook.mjs';

export const APP_KEY = 'relay-test-app';
export const APP_SECRET = 'relay-test-app-secret-值';
export const WEBHOOK_SECRET = `whsec_${Buffer.from('relay-test-webhook-key').toString('base64')}`;

/**
 * Starts the built relay on an ephemeral loopback port. `bindings` override
 * the defaults; a binding set to `undefined` is left out. Everything workerd
 * prints is collected in `logs` so tests can inspect log lines.
 */
export async function startRelay(bindings = {}) {
  const all = {
    YUNXIN_APP_KEY: APP_KEY,
    YUNXIN_APP_SECRET: APP_SECRET,
    WEBHOOK_SECRET,
    MAX_RECEIVERS_PER_EVENT: '10000',
    ...bindings,
  };
  const logs = [];
  const collect = (stream) => {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => logs.push(...chunk.split('\n').filter(Boolean)));
  };
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    modules: true,
    scriptPath: 'worker/build/index.js',
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    bindings: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)),
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
 * POSTs a signed event. `overrides` may replace any header (undefined drops
 * it), the body text, the secret, or shift the timestamp by `skewSeconds`.
 */
export async function postEvent(relayUrl, notification, overrides = {}) {
  const body = overrides.body ?? JSON.stringify(notification);
  const id = overrides.id ?? `evt_${randomUUID()}`;
  const timestamp = String(Math.floor(Date.now() / 1000) + (overrides.skewSeconds ?? 0));
  const headers = {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': sign(overrides.signedBody ?? body, { secret: overrides.secret, id, timestamp }),
    ...overrides.headers,
  };
  for (const [name, value] of Object.entries(headers)) if (value === undefined) delete headers[name];
  const response = await fetch(`${relayUrl}/v1/notifications`, { method: overrides.method ?? 'POST', headers, body });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { id, status: response.status, headers: response.headers, json, text };
}

/** A notification from `bot` to `n` receivers named `${prefix}${i}`. */
export function notification(n, { prefix = 'user', content = 'deploy finished' } = {}) {
  return {
    sender_id: 'bot',
    receiver_ids: Array.from({ length: n }, (_, i) => `${prefix}${i}`),
    content,
  };
}
