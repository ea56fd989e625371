// What webhook senders put on the wire, made with each provider's own
// library (GitHub's @octokit/webhooks-methods, Stripe's SDK, the Standard
// Webhooks and Svix libraries) or, where the provider documents only the
// algorithm (Standard Webhooks v1a, a generic HMAC, Yunxin's callbacks),
// with node:crypto: never with the relay's Rust code, so a verification bug
// in the relay shows up as a failed test.
import { createHash, createHmac, generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import { sign as githubSign } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { request } from './harness.mjs';

const stripe = new Stripe('sk_test_not_used_for_signing');

/** UNIX seconds, shifted by `skew`. */
export const unixNow = (skew = 0) => Math.floor(Date.now() / 1000) + skew;

/** A Standard Webhooks `whsec_` secret: 32 bytes derived from `seed`. */
export const whsec = (seed) => `whsec_${createHash('sha256').update(seed).digest('base64')}`;

/** An Ed25519 key pair: the sender's private key, and the `whpk_` public key the relay holds. */
export function ed25519Pair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  return { privateKey, whpk: `whpk_${raw.toString('base64')}` };
}

/** GitHub: `X-Hub-Signature-256` from @octokit/webhooks-methods, plus the event and delivery headers. */
export async function githubHeaders(body, { secret, event = 'push', delivery = randomUUID() }) {
  return {
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-github-hook-id': '30',
    'x-hub-signature-256': await githubSign(secret, body),
    'user-agent': 'GitHub-Hookshot/7d4e2b1',
  };
}

/** Stripe: `Stripe-Signature: t=…,v1=…` from Stripe's SDK, `timestamp` in UNIX seconds. */
export function stripeHeaders(body, { secret, timestamp = unixNow() }) {
  return {
    'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp }),
    'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
  };
}

/** Standard Webhooks v1 from the `standardwebhooks` library. */
export function standardWebhooksHeaders(body, { secret, id = `msg_${randomUUID()}`, timestamp = unixNow() }) {
  const signature = new StandardWebhook(secret).sign(id, new Date(timestamp * 1000), body);
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
}

/** Svix: the same signature from the `svix` library, under `svix-` header names. */
export function svixHeaders(body, { secret, id = `msg_${randomUUID()}`, timestamp = unixNow() }) {
  const signature = new SvixWebhook(secret).sign(id, new Date(timestamp * 1000), body);
  return { 'svix-id': id, 'svix-timestamp': String(timestamp), 'svix-signature': signature };
}

/**
 * Standard Webhooks v1a: `v1a,<base64 Ed25519 signature of "{id}.{timestamp}.{body}">`,
 * signed with node:crypto (`privateKey` from {@link ed25519Pair}).
 */
export function ed25519Headers(body, { privateKey, id = `msg_${randomUUID()}`, timestamp = unixNow() }) {
  const signature = cryptoSign(null, Buffer.from(`${id}.${timestamp}.${body}`), privateKey).toString('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1a,${signature}` };
}

/** A generic HMAC sender: `X-Signature: sha1=<base64 HMAC-SHA1 of "{timestamp}.{body}">` and `X-Timestamp`. */
export function hmacSha1Headers(body, { secret, timestamp = unixNow() }) {
  const mac = createHmac('sha1', secret).update(`${timestamp}.${body}`).digest('base64');
  return { 'x-signature': `sha1=${mac}`, 'x-timestamp': String(timestamp) };
}

export const bearerHeaders = (_body, { secret }) => ({ authorization: `Bearer ${secret}` });

/** `secret` is `user:password`. */
export const basicHeaders = (_body, { secret }) => ({ authorization: `Basic ${Buffer.from(secret).toString('base64')}` });

/**
 * Yunxin's callbacks (抄送), as its documentation says: `MD5` = hex MD5 of
 * the body, `CheckSum` = hex SHA1(AppSecret + MD5 + CurTime), `CurTime` in
 * **milliseconds**.
 */
export function yunxinHeaders(body, { appKey, secret, curTime = Date.now() }) {
  const md5 = createHash('md5').update(body).digest('hex');
  const checkSum = createHash('sha1').update(`${secret}${md5}${curTime}`).digest('hex');
  return { AppKey: appKey, CurTime: String(curTime), MD5: md5, CheckSum: checkSum };
}

/**
 * POSTs `body` (a string) to `/v1/hooks/{route}` with `headers`, by default
 * with `Prefer: wait` (`wait: false` for the queued path); `query` is
 * appended to the URL. Answers `{status, headers, json, text}`.
 */
export async function postHook(relayUrl, route, body, headers, { wait = true, query = '', method = 'POST', raw = false } = {}) {
  const all = { 'content-type': 'application/json', ...(wait ? { prefer: 'wait' } : {}), ...headers };
  return request(`${relayUrl}/v1/hooks/${route}${query}`, { method, headers: all, body, raw });
}
