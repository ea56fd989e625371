// Standard Webhooks signing with node:crypto: what a webhook sender does.
// Kept apart from the Rust relay so that tests check one implementation
// against another.
import { createHmac } from 'node:crypto';

/** `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under a `whsec_` secret. */
export function signWebhook(body, { secret, id, timestamp }) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}
