// A Cloudflare Worker in plain JavaScript that forwards a notification to Yunxin.
//
//   POST /notify
//   Authorization: Bearer <RELAY_TOKEN>
//   Idempotency-Key: <optional: the same key never notifies twice>
//   Content-Type: application/json
//   { "sender_id": "ops-bot", "receiver_ids": ["alice", ...], "content": {...} }
//
// Answers with the per-receiver report of yunxin-edge's send(): 200 when every receiver
// got the notification, 207 when some did not or may not have (the report says who:
// `failed` with whether a retry may help, `unknown` when the answer was lost after the
// request went out; Retry-After is set when a retry may help, and re-sending with the
// same Idempotency-Key never notifies anyone twice), 400 with { error: { code, field,
// limit, message } } when the notification breaks a documented limit or is malformed.
//
// Configuration (wrangler.toml vars and secrets): YUNXIN_BASE_URL, YUNXIN_APP_KEY,
// YUNXIN_APP_SECRET (secret), RELAY_TOKEN (secret), UPSTREAM_TIMEOUT_MS.
import { send, YunxinError } from 'yunxin-edge';

const MAX_BODY_BYTES = 1 << 20; // 1 MiB: 10,000 receivers of 32 characters fit with room to spare

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname !== '/notify') return problem(404, 'not_found', 'POST notifications to /notify');
    if (request.method !== 'POST') return problem(405, 'method_not_allowed', 'use POST', { allow: 'POST' });

    const config = readConfig(env);
    // Fail closed: without a token anyone could notify every user of the app.
    if (!config) return problem(500, 'misconfigured', 'the relay is missing its Yunxin credentials or RELAY_TOKEN');
    if (!(await authorized(request, config.relayToken))) {
      return problem(401, 'unauthorized', 'send Authorization: Bearer <RELAY_TOKEN>', { 'www-authenticate': 'Bearer' });
    }

    const notification = await readJson(request);
    if (notification instanceof Response) return notification;

    let report;
    try {
      report = await send(config.credentials, notification, {
        baseUrl: config.baseUrl,
        eventId: request.headers.get('idempotency-key') ?? undefined,
        timeoutMs: config.timeoutMs,
      });
    } catch (error) {
      if (!(error instanceof YunxinError)) throw error;
      const { code, field, limit, message } = error;
      return Response.json({ error: { code, field, limit, message } }, { status: 400 });
    }

    const complete = report.failed.length === 0 && report.unknown.length === 0 && report.not_attempted.length === 0;
    const headers = report.retry_after_secs === undefined ? {} : { 'retry-after': String(report.retry_after_secs) };
    return Response.json(report, { status: complete ? 200 : 207, headers });
  },
};

function readConfig(env) {
  const { YUNXIN_APP_KEY: appKey, YUNXIN_APP_SECRET: appSecret, RELAY_TOKEN: relayToken } = env;
  if (!appKey || !appSecret || !relayToken) return null;
  const timeoutMs = Number(env.UPSTREAM_TIMEOUT_MS);
  return {
    credentials: { appKey, appSecret },
    relayToken,
    baseUrl: env.YUNXIN_BASE_URL || undefined, // unset: Yunxin's mainland data centre
    timeoutMs: Number.isSafeInteger(timeoutMs) && timeoutMs > 0 ? timeoutMs : undefined,
  };
}

// Compares SHA-256 digests in constant time: equal lengths, and no early exit that
// would tell an attacker how much of the token they guessed right.
async function authorized(request, token) {
  const given = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
  if (given === undefined) return false;
  const digest = async (text) => crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  const [a, b] = await Promise.all([digest(given), digest(token)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

async function readJson(request) {
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) return problem(413, 'too_large', `the body may be at most ${MAX_BODY_BYTES} bytes`);
  const body = await request.arrayBuffer(); // a chunked body declares no length
  if (body.byteLength > MAX_BODY_BYTES) return problem(413, 'too_large', `the body may be at most ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return problem(400, 'json', 'the body is not JSON');
  }
}

function problem(status, code, message, headers = {}) {
  return Response.json({ error: { code, message } }, { status, headers });
}
