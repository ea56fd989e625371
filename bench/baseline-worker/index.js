// The baseline of bench/worker.mjs: the relay's synchronous path as a user would write it
// by hand in plain JavaScript, with nothing but the Workers runtime. Same bindings as the
// relay (YUNXIN_APP_KEY, YUNXIN_APP_SECRET, WEBHOOK_SECRET, YUNXIN_BASE_URL,
// MAX_RECEIVERS_PER_EVENT, UPSTREAM_TIMEOUT_MS), same job:
//   - Standard Webhooks: HMAC-SHA256 over "{id}.{timestamp}.{body}" with crypto.subtle,
//     ±300 s, several space-separated secrets;
//   - the body parsed, the basic limits checked, receivers de-duplicated
//     case-insensitively;
//   - calls of at most 500 receivers, each signed with Yunxin's SHA-1 CheckSum (crypto.subtle),
//     a random nonce and a trace id derived from webhook-id (SHA-256), sent with fetch at
//     most 6 at a time, retried twice on transport errors and 5xx;
//   - the answers merged into { event_id, requests, delivered, failed, not_attempted },
//     200 (or 503 when something retryable is left), and one JSON log line per event.
// It is a benchmark baseline, not a product: it is not used by the relay or the package.

const BATCH_PATH = '/im/v2/custom_notification/batch';
const MAX_PER_CALL = 500;
const MAX_IN_FLIGHT = 6;
const RETRIES = 2;
const TOLERANCE_SECS = 300;
const encoder = new TextEncoder();

// HMAC keys are imported once per secret text and kept for the isolate's lifetime.
let cachedKeys = { text: undefined, keys: [] };
async function webhookKeys(text) {
  if (cachedKeys.text !== text) {
    const keys = await Promise.all(
      text
        .split(/\s+/)
        .filter(Boolean)
        .map((secret) => {
          const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, '')), (c) => c.charCodeAt(0));
          return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        }),
    );
    cachedKeys = { text, keys };
  }
  return cachedKeys.keys;
}

function base64(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
function hex(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += HEX[b];
  return s;
}

function equalText(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

async function verifyWebhook(request, body, env) {
  const id = request.headers.get('webhook-id');
  const timestamp = request.headers.get('webhook-timestamp');
  const signature = request.headers.get('webhook-signature');
  if (!id || !timestamp || !signature) return 'missing webhook headers';
  if (!/^[0-9]+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECS) {
    return 'timestamp outside the tolerance';
  }
  const signed = encoder.encode(`${id}.${timestamp}.${body}`);
  const presented = signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => s.slice(3));
  for (const key of await webhookKeys(env.WEBHOOK_SECRET)) {
    const expected = base64(await crypto.subtle.sign('HMAC', key, signed));
    if (presented.some((p) => equalText(p, expected))) return null;
  }
  return 'bad signature';
}

function error(status, code, message) {
  return Response.json({ error: { code, message } }, { status });
}

async function traceId(eventId, index) {
  const h = hex(await crypto.subtle.digest('SHA-256', encoder.encode(`yunxin-edge trace v1\0${eventId}\0${index}`)));
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

async function sign(env) {
  const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
  const curTime = String(Math.floor(Date.now() / 1000));
  const checkSum = hex(await crypto.subtle.digest('SHA-1', encoder.encode(env.YUNXIN_APP_SECRET + nonce + curTime)));
  return { AppKey: env.YUNXIN_APP_KEY, Nonce: nonce, CurTime: curTime, CheckSum: checkSum };
}

/** One call with retries: { receivers, success: [...], failed: [...], retryable }. */
async function call(env, url, body, receivers, trace) {
  const timeoutMs = Number(env.UPSTREAM_TIMEOUT_MS ?? 10_000);
  let last = 'not sent';
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100 << attempt));
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          ...(await sign(env)),
          'X-custom-traceid': trace,
          'Content-Type': 'application/json;charset=utf-8',
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.text();
      if (response.status >= 500) {
        last = `HTTP ${response.status} from upstream`;
        continue;
      }
      const answer = JSON.parse(text);
      if (response.status === 200 && answer.code === 200) {
        const failed = (answer.data?.failed_list ?? []).map((f) => ({
          account_id: f.account_id,
          error_code: f.error_code,
          error_msg: f.error_msg,
          retryable: false,
        }));
        const failedIds = new Set(failed.map((f) => f.account_id.toLowerCase()));
        return { success: receivers.filter((r) => !failedIds.has(r.toLowerCase())), failed, retryable: false };
      }
      const retryable = answer.code === 416 || answer.code >= 500;
      const reason = { error_code: answer.code, error_msg: answer.msg ?? `HTTP ${response.status}`, retryable };
      if (retryable && answer.code !== 416 && attempt < RETRIES) continue;
      return { success: [], failed: receivers.map((id) => ({ account_id: id, ...reason })), retryable };
    } catch (e) {
      last = `fetch failed: ${e?.message ?? e}`;
    }
  }
  const reason = { error_code: null, error_msg: last, retryable: true };
  return { success: [], failed: receivers.map((id) => ({ account_id: id, ...reason })), retryable: true };
}

async function notifications(request, env) {
  const length = Number(request.headers.get('content-length') ?? 0);
  if (length > 1024 * 1024) return error(413, 'payload_too_large', 'body over 1 MiB');
  if (!(request.headers.get('content-type') ?? '').toLowerCase().startsWith('application/json')) {
    return error(415, 'unsupported_media_type', 'not JSON');
  }
  const body = await request.text();
  const refused = await verifyWebhook(request, body, env);
  if (refused) return error(401, 'unauthorized', refused);
  const eventId = request.headers.get('webhook-id');

  let notification;
  try {
    notification = JSON.parse(body);
  } catch (e) {
    return error(400, 'malformed_json', e.message);
  }
  const { sender_id: sender, receiver_ids: receivers } = notification ?? {};
  let { content } = notification ?? {};
  if (typeof content === 'object' && content !== null) content = JSON.stringify(content);
  if (typeof sender !== 'string' || sender.length === 0 || sender.length > 32) {
    return error(422, 'invalid', 'sender_id: 1 to 32 characters');
  }
  if (!Array.isArray(receivers) || receivers.length === 0) return error(422, 'invalid', 'receiver_ids: at least one');
  if (typeof content !== 'string' || content.length === 0 || content.length > 4096) {
    return error(422, 'invalid', 'content: 1 to 4096 characters');
  }
  const seen = new Set();
  const unique = [];
  for (const id of receivers) {
    if (typeof id !== 'string' || id.length === 0 || id.length > 32 || /\s/.test(id)) {
      return error(422, 'invalid', `receiver_ids: bad id ${JSON.stringify(id)}`);
    }
    const key = id.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      unique.push(id);
    }
  }
  if (unique.length > Number(env.MAX_RECEIVERS_PER_EVENT ?? 10_000)) {
    return error(422, 'too_many', 'receiver_ids: too many');
  }

  const url = `${(env.YUNXIN_BASE_URL ?? 'https://open.yunxinapi.com').replace(/\/$/, '')}${BATCH_PATH}`;
  const chunks = [];
  for (let i = 0; i < unique.length; i += MAX_PER_CALL) chunks.push(unique.slice(i, i + MAX_PER_CALL));
  const results = new Array(chunks.length);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const i = next++;
      const chunkBody = JSON.stringify({ ...notification, content, receiver_ids: chunks[i] });
      results[i] = await call(env, url, chunkBody, chunks[i], await traceId(eventId, i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, chunks.length) }, worker));

  const report = {
    event_id: eventId,
    requests: chunks.length,
    delivered: results.flatMap((r) => r.success),
    failed: results.flatMap((r) => r.failed),
    not_attempted: [],
  };
  const status = results.some((r) => r.retryable) ? 503 : 200;
  return { status, report };
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname !== '/v1/notifications') return error(404, 'not_found', pathname);
    if (request.method !== 'POST') return error(405, 'method_not_allowed', request.method);
    const started = Date.now();
    const outcome = await notifications(request, env);
    if (outcome instanceof Response) return outcome;
    const { status, report } = outcome;
    console.log(
      JSON.stringify({
        event_id: report.event_id,
        mode: 'wait',
        status,
        requests: report.requests,
        delivered: report.delivered.length,
        failed: report.failed.length,
        duration_ms: Date.now() - started,
      }),
    );
    return Response.json(report, { status, headers: status === 503 ? { 'Retry-After': '5' } : {} });
  },
};
