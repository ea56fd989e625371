// Standard Webhooks signing with node:crypto: what a webhook sender does.
// Kept apart from the Rust relay so that tests check one implementation
// against another.
import { createHmac, randomUUID } from 'node:crypto';

/** `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under a `whsec_` secret. */
export function signWebhook(body, { secret, id, timestamp }) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * The three headers of a signed webhook over `body` (a string): a fresh
 * `evt_…` id and the current time unless given.
 */
export function webhookHeaders(body, { secret, id = `evt_${randomUUID()}`, timestamp = String(Math.floor(Date.now() / 1000)) }) {
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': signWebhook(body, { secret, id, timestamp }),
  };
}
