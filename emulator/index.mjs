// Yunxin IM emulator: stands in for NetEase Yunxin's
// `POST /im/v2/custom_notification/batch` in tests.
//
// This is deliberately an independent implementation of Yunxin's checks. The Rust
// client signs and validates requests with its own code; sharing nothing with it means
// a bug there cannot hide behind the same bug here. Zero npm dependencies: only
// node:http and node:crypto.
//
// Reading order: constants → request signature → body validation → fault plan →
// call quota → the server (batch endpoint, control endpoints) → small utilities.

import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';

export const BATCH_PATH = '/im/v2/custom_notification/batch';

// Limits from the API reference. "Characters" are Unicode code points, not UTF-8 bytes
// and not UTF-16 units, so an emoji counts once.
export const LIMITS = Object.freeze({
  nonceChars: 128,
  accountIdChars: 32,
  receivers: 500,
  content: 4096,
  sound: 30,
  pushContent: 500,
  pushPayload: 2048,
  forcePushContent: 500,
  forcePushIds: 100,
});

// Yunxin's business codes used here (HTTP status stays 200 for all of them).
const OK = 200;
const TOO_LONG = 405; // "parameter too long"
const PARAM_ERROR = 414; // parameter error, including a bad CheckSum
const ACCOUNT_NOT_EXIST = 102404; // per-receiver code: 1 + resource 02 + 404

// Retryable per-receiver codes a `receiver-code` fault may answer (1 + 02 + a retryable
// call-level code), with the error_msg sent beside each.
export const RETRYABLE_RECEIVER_CODES = Object.freeze({
  102416: 'frequency control',
  102449: 'need retry',
  102500: 'internal error',
  102503: 'server busy',
  102514: 'service unavailable',
});

// ---------------------------------------------------------------------------
// Request signature: AppKey, Nonce, CurTime, CheckSum
// ---------------------------------------------------------------------------

/** Lowercase hex SHA1 of the plain UTF-8 concatenation AppSecret + Nonce + CurTime. */
export function checksum(appSecret, nonce, curTime) {
  return createHash('sha1').update(`${appSecret}${nonce}${curTime}`, 'utf8').digest('hex');
}

/**
 * Checks Yunxin's signature headers the way Yunxin does.
 * `headers`: any object of header name → value (names are matched case-insensitively).
 * `apps`: `{ [appKey]: appSecret }` or a Map. `nowMs`: the current time in milliseconds.
 * Returns `{ ok: true, appKey }` or `{ ok: false, code: 414, msg }`. Messages never
 * contain the secret or the expected checksum (that would be a signing oracle).
 */
export function verifySignedHeaders(headers, apps, nowMs = Date.now(), { maxSkewSeconds = 300 } = {}) {
  const h = lowerCaseKeys(headers);
  const fail = (msg) => ({ ok: false, code: PARAM_ERROR, msg });

  const appKey = h.appkey;
  if (typeof appKey !== 'string' || appKey === '') return fail('AppKey header is missing');
  const secret = lookupSecret(apps, appKey);
  if (secret === undefined) return fail('AppKey is invalid: no such app');

  const nonce = h.nonce;
  if (typeof nonce !== 'string' || nonce === '') return fail('Nonce header is missing');
  if (charCount(nonce) > LIMITS.nonceChars) {
    return fail(`Nonce is too long: at most ${LIMITS.nonceChars} characters`);
  }

  // CurTime is UNIX *seconds*. A value in milliseconds is far in the future and is
  // rejected as such, which is exactly what catches a client using the wrong unit.
  const curTime = h.curtime;
  if (typeof curTime !== 'string' || !/^[0-9]{1,20}$/.test(curTime)) {
    return fail('CurTime must be a decimal integer of UNIX seconds');
  }
  const sentSec = Number(curTime);
  const nowSec = Math.floor(nowMs / 1000);
  if (sentSec > nowSec) return fail('CurTime is in the future (expected UNIX seconds)');
  if (nowSec - sentSec > maxSkewSeconds) return fail('CurTime is expired: checksum older than allowed');

  const sent = h.checksum;
  if (typeof sent !== 'string' || sent === '') return fail('CheckSum header is missing');
  const expected = Buffer.from(checksum(secret, nonce, curTime), 'utf8');
  const given = Buffer.from(sent, 'utf8');
  // timingSafeEqual needs equal lengths; the length of a SHA1 hex string is public anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return fail('checksum error');
  }
  return { ok: true, appKey };
}

function lookupSecret(apps, appKey) {
  if (apps instanceof Map) return apps.get(appKey);
  // Object.hasOwn keeps "constructor" or "__proto__" from resolving to something.
  return Object.hasOwn(apps, appKey) ? apps[appKey] : undefined;
}

// ---------------------------------------------------------------------------
// Body validation
// ---------------------------------------------------------------------------

// The body schema from the reference. Both spellings of notification_config (official
// doc/SDKs and the seed's field table) are accepted. `over` is the code for exceeding
// `max`: strings that are too long are 405 ("parameter too long"), lists that are too
// long are 414, as the brief for this emulator prescribes.
const accountIds = (min, max) => ({ type: 'accountIds', min, max, over: PARAM_ERROR });
const text = (max, extra = {}) => ({ type: 'string', max, over: TOO_LONG, ...extra });
const BODY_SCHEMA = {
  sender_id: { type: 'accountId', required: true },
  receiver_ids: { ...accountIds(1, LIMITS.receivers), required: true },
  content: text(LIMITS.content, { required: true, nonEmpty: true }),
  sound: text(LIMITS.sound),
  push_config: {
    type: 'object',
    fields: {
      push_enabled: { type: 'boolean' },
      push_nick_enabled: { type: 'boolean' },
      push_content: text(LIMITS.pushContent),
      push_payload: text(LIMITS.pushPayload),
      push_forcepush_enable: { type: 'boolean' },
      push_forcepush_all: { type: 'boolean' },
      push_forcepush_ids: accountIds(0, LIMITS.forcePushIds),
      push_forcepush_content: text(LIMITS.forcePushContent),
    },
  },
  route_config: {
    type: 'object',
    fields: { route_enabled: { type: 'boolean' }, route_environment: { type: 'string' } },
  },
  notification_config: {
    type: 'object',
    fields: {
      offline_enabled: { type: 'boolean' },
      unread_enabled: { type: 'boolean' },
      notification_enabled: { type: 'boolean' },
      notification_extension: { type: 'string' },
      high_priority: { type: 'integer' },
      high_priority_policy: { type: 'integer' },
    },
  },
};

/**
 * Validates a parsed batch body. Returns `{ ok: true, senderId, receiverIds, content }`
 * (ids as sent) or `{ ok: false, code, msg }`.
 * A `null` anywhere is a 414: a correct client omits unset fields instead of sending
 * null, so this catches a client that serialises `None` as `null`.
 * Unknown fields are a 414 too unless `allowUnknownFields` (Yunxin would ignore them,
 * but a misspelt optional field silently ignored is a client bug worth seeing).
 */
export function validateBatchBody(body, { allowUnknownFields = false } = {}) {
  if (!isPlainObject(body)) return { ok: false, code: PARAM_ERROR, msg: 'body must be a JSON object' };
  const problem = checkFields(body, BODY_SCHEMA, '', allowUnknownFields);
  if (problem) return { ok: false, ...problem };
  return { ok: true, senderId: body.sender_id, receiverIds: body.receiver_ids, content: body.content };
}

function checkFields(obj, schema, prefix, allowUnknownFields) {
  for (const [name, value] of Object.entries(obj)) {
    const path = prefix + name;
    if (value === null) return param(`${path} is null: omit unset fields instead of sending null`);
    if (!Object.hasOwn(schema, name)) {
      if (allowUnknownFields) continue;
      return param(`${path} is not a known field`);
    }
    const problem = checkValue(value, schema[name], path, allowUnknownFields);
    if (problem) return problem;
  }
  for (const [name, rule] of Object.entries(schema)) {
    if (rule.required && !Object.hasOwn(obj, name)) return param(`${prefix}${name} is required`);
  }
  return null;
}

function checkValue(value, rule, path, allowUnknownFields) {
  switch (rule.type) {
    case 'boolean':
      return typeof value === 'boolean' ? null : param(`${path} must be a boolean`);
    case 'integer':
      return Number.isInteger(value) ? null : param(`${path} must be an integer`);
    case 'string': {
      if (typeof value !== 'string') return param(`${path} must be a string`);
      if (rule.nonEmpty && value === '') return param(`${path} must not be empty`);
      const n = charCount(value);
      if (rule.max !== undefined && n > rule.max) {
        return { code: rule.over, msg: `${path} is too long: ${n} characters, at most ${rule.max}` };
      }
      return null;
    }
    case 'accountId':
      return checkAccountId(value, path);
    case 'accountIds': {
      if (!Array.isArray(value)) return param(`${path} must be an array of account ids`);
      if (value.length < rule.min) return param(`${path} must hold at least ${rule.min} account id(s)`);
      if (value.length > rule.max) {
        return { code: rule.over, msg: `${path} holds ${value.length} account ids, at most ${rule.max}` };
      }
      for (let i = 0; i < value.length; i++) {
        const problem = checkAccountId(value[i], `${path}[${i}]`);
        if (problem) return problem;
      }
      return null;
    }
    case 'object':
      if (!isPlainObject(value)) return param(`${path} must be an object`);
      return checkFields(value, rule.fields, `${path}.`, allowUnknownFields);
    default:
      throw new Error(`schema bug: unknown type ${rule.type}`);
  }
}

function checkAccountId(value, path) {
  if (value === null) return param(`${path} is null`);
  if (typeof value !== 'string' || value === '') return param(`${path} must be a non-empty string`);
  if (charCount(value) > LIMITS.accountIdChars) {
    return param(`${path} is too long: at most ${LIMITS.accountIdChars} characters`);
  }
  return null;
}

const param = (msg) => ({ code: PARAM_ERROR, msg });

// ---------------------------------------------------------------------------
// Fault plan: which of the next requests to break, and how
// ---------------------------------------------------------------------------

export const FAULT_KINDS = Object.freeze([
  'http502', // gateway error: HTTP 502, HTML body, nothing delivered
  'http500', // HTTP 500, plain-text body, nothing delivered
  'code416', // HTTP 200 {code:416} frequency control, nothing delivered
  'code500', // HTTP 200 {code:500} internal error, nothing delivered
  'code503', // HTTP 200 {code:503} server busy, nothing delivered
  'slow', // wait delayMs, then process normally (delivered)
  'drop', // destroy the socket before processing: nothing delivered
  'drop-after', // process and deliver, then destroy the socket without answering
  'receiver-code', // HTTP 200 {code:200}: matching receivers in failed_list with a retryable code
]);

// Only `receiver-code` acts on single receivers; every other kind acts on a whole request.
const RECEIVER_FAULT = 'receiver-code';
const RECEIVER_FIELDS = ['code', 'accounts', 'prefix'];

/**
 * Normalises one fault spec `{ kind, count?, fraction?, delayMs? }`; throws on nonsense
 * so a typo in a test fails loudly instead of injecting nothing.
 * count: applies to the next `count` signed requests. fraction: applies to that share of
 * requests (drawn from the seeded PRNG). Both: that share, until count is used up.
 * Neither: every request until cleared. delayMs: wait before acting (any kind).
 * `receiver-code` also takes `code`, `accounts`, `prefix`, and its count and fraction
 * are about matching receivers, not requests (see normaliseReceiverFault).
 */
function normaliseFault(spec) {
  if (!isPlainObject(spec)) throw new TypeError('fault spec must be an object');
  const { kind, count, fraction, delayMs } = spec;
  if (!FAULT_KINDS.includes(kind)) {
    throw new TypeError(`unknown fault kind ${JSON.stringify(kind)}; use one of ${FAULT_KINDS.join(', ')}`);
  }
  const receiver = kind === RECEIVER_FAULT ? normaliseReceiverFault(spec) : {};
  if (kind !== RECEIVER_FAULT && RECEIVER_FIELDS.some((f) => spec[f] !== undefined)) {
    throw new TypeError(`fault fields ${RECEIVER_FIELDS.join(', ')} apply only to kind '${RECEIVER_FAULT}'`);
  }
  if (count !== undefined && !(Number.isInteger(count) && count > 0)) {
    throw new TypeError('fault count must be a positive integer');
  }
  if (fraction !== undefined && !(typeof fraction === 'number' && fraction >= 0 && fraction <= 1)) {
    throw new TypeError('fault fraction must be a number in [0, 1]');
  }
  const delay = delayMs ?? (kind === 'slow' ? 1000 : 0);
  if (!(Number.isInteger(delay) && delay >= 0)) throw new TypeError('fault delayMs must be a non-negative integer');
  return { kind, count, fraction, delayMs: delay, remaining: count, ...receiver };
}

/**
 * The receiver part of a `receiver-code` spec:
 * code: one of RETRYABLE_RECEIVER_CODES (required).
 * accounts: exact account ids; prefix: an id prefix. At least one; a receiver matches if
 * it is listed or starts with the prefix, both compared lower-cased as Yunxin does.
 */
function normaliseReceiverFault({ code, accounts, prefix }) {
  const fail = (msg) => new TypeError(`${RECEIVER_FAULT} fault: ${msg}`);
  if (typeof code !== 'number' || !Object.hasOwn(RETRYABLE_RECEIVER_CODES, code)) {
    throw fail(`code must be one of ${Object.keys(RETRYABLE_RECEIVER_CODES).join(', ')} (a retryable per-receiver code), got ${JSON.stringify(code)}`);
  }
  if (accounts === undefined && prefix === undefined) throw fail('needs accounts and/or prefix');
  const isId = (id) => typeof id === 'string' && id !== '' && charCount(id) <= LIMITS.accountIdChars;
  if (accounts !== undefined && !(Array.isArray(accounts) && accounts.length > 0 && accounts.every(isId))) {
    throw fail(`accounts must be a non-empty array of account ids (strings of 1..${LIMITS.accountIdChars} characters)`);
  }
  if (prefix !== undefined && !(typeof prefix === 'string' && prefix !== '')) {
    throw fail('prefix must be a non-empty string');
  }
  const ids = accounts?.map((id) => id.toLowerCase());
  return { code, accounts: ids, prefix: prefix?.toLowerCase(), accountSet: new Set(ids) };
}

function matchesReceiver(spec, id) {
  return spec.accountSet.has(id) || (spec.prefix !== undefined && id.startsWith(spec.prefix));
}

// What faults() shows: the spec as normalised, without internals.
function describeFault({ kind, count, fraction, delayMs, remaining, code, accounts, prefix }) {
  const out = { kind, count, fraction, delayMs, remaining };
  return kind === RECEIVER_FAULT ? { ...out, code, accounts, prefix } : out;
}

function createFaultPlan(seed) {
  let active = [];
  let random = mulberry32(seed);
  return {
    add(specs) {
      const list = (Array.isArray(specs) ? specs : [specs]).map(normaliseFault);
      active.push(...list); // validated first, so a bad spec adds nothing
      return this.list();
    },
    clear() {
      active = [];
    },
    reset() {
      active = [];
      random = mulberry32(seed);
    },
    list() {
      return active.map(describeFault);
    },
    // Called once per request that passed the signature check. Request-level specs are
    // tried in the order they were injected; the first that applies wins. Receiver
    // specs are skipped here, so they never shadow a request-level fault.
    pick() {
      for (const spec of active) {
        if (spec.kind === RECEIVER_FAULT) continue;
        if (spec.fraction !== undefined && !(random() < spec.fraction)) continue;
        return use(spec);
      }
      return null;
    },
    // Called once per distinct known receiver (lower-cased) of a call that is being
    // processed (not replayed). Returns the `receiver-code` spec that fails it, or null;
    // same order rule, and count and fraction are spent per receiver.
    pickReceiver(id) {
      for (const spec of active) {
        if (spec.kind !== RECEIVER_FAULT || !matchesReceiver(spec, id)) continue;
        if (spec.fraction !== undefined && !(random() < spec.fraction)) continue;
        return use(spec);
      }
      return null;
    },
  };

  function use(spec) {
    if (spec.remaining !== undefined && --spec.remaining === 0) active = active.filter((s) => s !== spec);
    return spec;
  }
}

// A tiny seedable PRNG (mulberry32) so fractional faults are reproducible run to run.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// Call quota: Yunxin's calls per app per minute
// ---------------------------------------------------------------------------

// Yunxin's frequency-control answer (HTTP 200, like every business outcome); the same
// body as the injected `code416` fault.
const FREQUENCY_CONTROL = Object.freeze({ code: 416, msg: 'frequency control' });
const QUOTA_WINDOWS = ['sliding', 'fixed'];
const QUOTA_FIELDS = ['perMinute', 'blockSeconds', 'window'];
/** The quota's period: Yunxin counts batch calls per app per minute. */
export const QUOTA_WINDOW_MS = 60_000;

/**
 * Normalises a quota option `{ perMinute, blockSeconds = 60, window = 'sliding' }`;
 * `null`/`undefined`/`false` = no quota. Throws a TypeError naming the field.
 * perMinute: calls per app key per 60 s (a positive integer).
 * blockSeconds: after the call that goes over, every call of that app is answered 416
 *   for this long (a non-negative integer; 0 = only calls over the quota are refused).
 * window: 'sliding' (any 60 s span, the strict one) or 'fixed' (clock minutes).
 */
export function normaliseQuota(quota) {
  if (quota === undefined || quota === null || quota === false) return null;
  if (!isPlainObject(quota)) throw new TypeError('quota must be an object { perMinute, blockSeconds?, window? } or null');
  const unknown = Object.keys(quota).filter((k) => !QUOTA_FIELDS.includes(k));
  if (unknown.length) throw new TypeError(`quota: unknown field ${unknown.join(', ')}; use ${QUOTA_FIELDS.join(', ')}`);
  const { perMinute, blockSeconds = 60, window = 'sliding' } = quota;
  if (!(Number.isSafeInteger(perMinute) && perMinute > 0)) {
    throw new TypeError(`quota.perMinute must be a positive integer (calls per app per minute), got ${JSON.stringify(perMinute)}`);
  }
  if (!(Number.isSafeInteger(blockSeconds) && blockSeconds >= 0)) {
    throw new TypeError(`quota.blockSeconds must be a non-negative integer, got ${JSON.stringify(blockSeconds)}`);
  }
  if (!QUOTA_WINDOWS.includes(window)) {
    throw new TypeError(`quota.window must be one of ${QUOTA_WINDOWS.join(', ')}, got ${JSON.stringify(window)}`);
  }
  return { perMinute, blockSeconds, window };
}

/**
 * Per-app call counting, and the quota's verdict when one is set. `check(appKey, atMs)`
 * is called once for every correctly signed batch call and returns true if the quota
 * refuses it (answer 416). Whether or not a quota is set, it measures every app's
 * calls in sliding 60 s windows, so a bench can see how close a client came.
 */
function createQuota(initial) {
  let config = normaliseQuota(initial);
  let apps = new Map();

  function app(appKey) {
    let a = apps.get(appKey);
    if (!a) {
      a = {
        calls: new TimeQueue(), // every counted call in the last 60 s
        accepted: new TimeQueue(), // calls the quota let through in the last 60 s
        minute: null, // fixed window: the current clock minute and its accepted calls
        minuteCount: 0,
        blockedUntil: -Infinity,
        totalCalls: 0,
        totalRejected: 0,
        maxCalls: 0,
        maxAccepted: 0,
      };
      apps.set(appKey, a);
    }
    return a;
  }

  function refuses(a, at) {
    if (!config) return false;
    if (at < a.blockedUntil) return true; // blocked: refused whatever the count
    const used = config.window === 'sliding' ? a.accepted.size : a.minute === Math.floor(at / QUOTA_WINDOW_MS) ? a.minuteCount : 0;
    if (used < config.perMinute) return false;
    a.blockedUntil = at + config.blockSeconds * 1000;
    return true;
  }

  return {
    check(appKey, at) {
      const a = app(appKey);
      a.calls.prune(at);
      a.accepted.prune(at);
      a.totalCalls++;
      a.calls.push(at);
      a.maxCalls = Math.max(a.maxCalls, a.calls.size);
      if (refuses(a, at)) {
        a.totalRejected++;
        return true;
      }
      a.accepted.push(at);
      a.maxAccepted = Math.max(a.maxAccepted, a.accepted.size);
      const minute = Math.floor(at / QUOTA_WINDOW_MS);
      if (a.minute !== minute) [a.minute, a.minuteCount] = [minute, 0];
      a.minuteCount++;
      return false;
    },
    set(quota) {
      const next = normaliseQuota(quota); // validated first: a bad quota changes nothing
      config = next;
      apps = new Map();
    },
    reset() {
      apps = new Map();
    },
    stats() {
      const over = (max) => (config ? Math.max(0, max - config.perMinute) : null);
      const perApp = {};
      const total = { calls: 0, accepted: 0, rejected: 0, maxCallsPerWindow: 0, maxAcceptedPerWindow: 0 };
      for (const [key, a] of apps) {
        const s = {
          calls: a.totalCalls,
          accepted: a.totalCalls - a.totalRejected,
          rejected: a.totalRejected,
          maxCallsPerWindow: a.maxCalls,
          maxAcceptedPerWindow: a.maxAccepted,
          overQuota: over(a.maxCalls),
          blockedUntil: Number.isFinite(a.blockedUntil) ? a.blockedUntil : null,
        };
        perApp[key] = s;
        total.calls += s.calls;
        total.accepted += s.accepted;
        total.rejected += s.rejected;
        total.maxCallsPerWindow = Math.max(total.maxCallsPerWindow, s.maxCallsPerWindow);
        total.maxAcceptedPerWindow = Math.max(total.maxAcceptedPerWindow, s.maxAcceptedPerWindow);
      }
      return {
        enabled: config !== null,
        perMinute: config?.perMinute ?? null,
        blockSeconds: config?.blockSeconds ?? null,
        window: config?.window ?? null,
        ...total,
        overQuota: over(total.maxCallsPerWindow),
        apps: perApp,
      };
    },
  };
}

// Times (ms) of the last 60 s, oldest first. `prune(now)` drops those at or before
// now - 60 s, so `size` is the count in the window (now - 60 s, now].
class TimeQueue {
  #times = [];
  #head = 0;
  get size() {
    return this.#times.length - this.#head;
  }
  push(t) {
    this.#times.push(t);
  }
  prune(now) {
    while (this.#head < this.#times.length && this.#times[this.#head] <= now - QUOTA_WINDOW_MS) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }
}

// ---------------------------------------------------------------------------
// The emulator server
// ---------------------------------------------------------------------------

/**
 * Starts the emulator. Options:
 *   host = '127.0.0.1', port = 0 (ephemeral),
 *   apps: { [appKey]: appSecret } or Map (required, at least one),
 *   unknownAccounts = (id) => id.startsWith('ghost')  (id is lower-cased),
 *   knownAccounts: optional Set/array; if given, only these ids are known,
 *   maxSkewSeconds = 300, seed = 1 (fault PRNG), allowUnknownFields = false,
 *   maxBodyBytes = 8 MiB, now = Date.now (clock in ms, injectable for tests),
 *   log = false (true: one JSON line per request to stderr; or a function(entry)),
 *   quota = null: `{ perMinute, blockSeconds = 60, window = 'sliding' }` makes each app
 *     key's calls over `perMinute` in 60 s answer 416 and blocks the app (normaliseQuota).
 */
export async function startEmulator(options = {}) {
  const cfg = normaliseOptions(options);
  const faults = createFaultPlan(cfg.seed);
  const quota = createQuota(cfg.quota);
  let deliveries = [];
  let counts = new Map(); // receiverId → deliveries
  let requests = [];
  let replayCache = new Map(); // `${appKey}\n${traceId}` → { body, bodyHash }

  const sockets = new Set(); // tracked so close() can end keep-alive connections
  const timers = new Set(); // pending delays, cleared on close()
  let closed = false;

  const server = http.createServer((req, res) => {
    route(req, res).catch((err) => {
      // A bug in the emulator must be loud, not look like a Yunxin answer.
      process.stderr.write(`yunxin-emulator internal error: ${err?.stack ?? err}\n`);
      if (!res.headersSent) sendText(res, 500, 'emulator internal error');
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = server.address().port;

  async function route(req, res) {
    const path = new URL(req.url, 'http://emulator').pathname;
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    if (path.startsWith('/_emulator/')) return control(req, res, path);
    return batch(req, res, path);
  }

  // --- the batch endpoint --------------------------------------------------

  async function batch(req, res, path) {
    const rec = {
      traceId: headerValue(req.headers['x-custom-traceid']),
      method: req.method,
      path,
      appKey: null,
      receiverCount: null,
      httpStatus: null,
      code: null,
      msg: null,
      fault: null,
      replayed: false,
      traceIdConflict: false,
      checksumOk: null,
      quota: false, // true: answered 416 by the call quota
      delivered: 0,
      at: cfg.now(),
    };
    // Read the whole body first, whatever the outcome, so keep-alive connections stay usable.
    const raw = await readBody(req, cfg.maxBodyBytes);
    if (raw === null) return answerJson(rec, res, 413, { code: 413, msg: `body larger than ${cfg.maxBodyBytes} bytes` });
    rec.receiverCount = peekReceiverCount(raw);

    if (path !== BATCH_PATH) return answerJson(rec, res, 404, { code: 404, msg: 'not found' });
    if (req.method !== 'POST') return answerJson(rec, res, 405, { code: 405, msg: 'method not allowed' }, { allow: 'POST' });

    const sig = verifySignedHeaders(req.headers, cfg.apps, cfg.now(), cfg);
    rec.checksumOk = sig.ok;
    if (!sig.ok) return answerJson(rec, res, 200, { code: sig.code, msg: sig.msg });
    rec.appKey = sig.appKey;

    // The call quota counts every correctly signed call, replays and calls that a fault
    // will answer included. A call it refuses spends no fault and is never cached for
    // trace-id replay: it was not processed, and a retry after the block is.
    if (quota.check(sig.appKey, cfg.now())) {
      rec.quota = true;
      return answerJson(rec, res, 200, FREQUENCY_CONTROL);
    }

    // Faults only hit well-signed requests: a badly signed request is always a 414.
    const fault = faults.pick();
    rec.fault = fault?.kind ?? null;
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (closed) return;

    switch (fault?.kind) {
      case 'drop':
        finish(rec);
        return req.socket.destroy();
      case 'http502':
        return answerText(rec, res, 502, '<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>', 'text/html');
      case 'http500':
        return answerText(rec, res, 500, 'Internal Server Error', 'text/plain');
      case 'code416':
        return answerJson(rec, res, 200, FREQUENCY_CONTROL);
      case 'code500':
        return answerJson(rec, res, 200, { code: 500, msg: 'internal error' });
      case 'code503':
        return answerJson(rec, res, 200, { code: 503, msg: 'server busy' });
    }

    const outcome = processBatch(rec, req, raw);
    // A receiver-code fault with delayMs holds back the answer, not the processing.
    if (outcome.delayMs) await sleep(outcome.delayMs);
    if (closed) return;
    if (fault?.kind === 'drop-after') {
      // Delivered, but the client never hears about it: it must retry with the same trace id.
      rec.code = outcome.json.code;
      rec.msg = outcome.json.msg;
      finish(rec);
      return req.socket.destroy();
    }
    return answerJson(rec, res, 200, outcome.json, outcome.replayed ? { 'x-emulator-replayed': '1' } : {}, outcome.text);
  }

  // Business processing of a well-signed request: replay, parse, validate, deliver.
  // Synchronous from here on, so two concurrent requests with one trace id cannot
  // both deliver.
  function processBatch(rec, req, raw) {
    const cacheKey = rec.traceId ? `${rec.appKey}\n${rec.traceId}` : null;
    const bodyHash = createHash('sha256').update(raw).digest('hex');
    const cached = cacheKey && replayCache.get(cacheKey);
    if (cached) {
      // Yunxin de-duplicates by trace id: the original answer, no second delivery.
      rec.replayed = true;
      // Same trace id, different body: the client reused a trace id for a new request.
      rec.traceIdConflict = cached.bodyHash !== bodyHash;
      return { json: JSON.parse(cached.text), text: cached.text, replayed: true };
    }

    const contentType = headerValue(req.headers['content-type']) ?? '';
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      return { json: { code: PARAM_ERROR, msg: 'Content-Type must be application/json' } };
    }
    let body;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return { json: { code: PARAM_ERROR, msg: 'body is not valid JSON' } };
    }
    const v = validateBatchBody(body, cfg);
    if (!v.ok) return { json: { code: v.code, msg: v.msg } };

    const senderId = v.senderId.toLowerCase();
    if (isUnknown(senderId)) return { json: { code: ACCOUNT_NOT_EXIST, msg: 'sender_id account not exist' } };

    const { success_list, failed_list, delayMs } = deliverAll(rec, senderId, v);
    const json = { code: OK, msg: 'success', data: { success_list, failed_list } };
    const text = JSON.stringify(json);
    // Partial answers from a receiver-code fault are code 200 too: cached like any other.
    if (cacheKey) replayCache.set(cacheKey, { text, bodyHash });
    return { json, text, delayMs };
  }

  // Yunxin lower-cases account ids; both lists carry the lower-cased ids. Unknown
  // receivers fail with 102404; known ones may be failed by a receiver-code fault
  // (one decision per distinct id per call, so duplicates share it); the rest are
  // delivered, duplicates included.
  function deliverAll(rec, senderId, v) {
    const success_list = [];
    const failed_list = [];
    const faulted = new Map(); // id → receiver-code spec or null
    let delayMs = 0;
    for (const id of v.receiverIds.map((r) => r.toLowerCase())) {
      if (isUnknown(id)) {
        failed_list.push({ account_id: id, error_code: ACCOUNT_NOT_EXIST, error_msg: 'account not exist' });
        continue;
      }
      if (!faulted.has(id)) faulted.set(id, faults.pickReceiver(id));
      const fault = faulted.get(id);
      if (fault) {
        failed_list.push({ account_id: id, error_code: fault.code, error_msg: RETRYABLE_RECEIVER_CODES[fault.code] });
        rec.fault ??= RECEIVER_FAULT; // a request-level kind (slow, drop-after) keeps its name
        delayMs = Math.max(delayMs, fault.delayMs);
        continue;
      }
      success_list.push(id);
      deliveries.push({ traceId: rec.traceId, appKey: rec.appKey, senderId, receiverId: id, content: v.content, at: cfg.now() });
      counts.set(id, (counts.get(id) ?? 0) + 1);
      rec.delivered++;
    }
    return { success_list, failed_list, delayMs };
  }

  function isUnknown(id) {
    return Boolean(cfg.unknownAccounts(id)) || (cfg.knownAccounts !== null && !cfg.knownAccounts.has(id));
  }

  // --- answering and recording --------------------------------------------

  function answerJson(rec, res, status, json, headers = {}, text = JSON.stringify(json)) {
    rec.httpStatus = status;
    rec.code = json.code ?? null;
    rec.msg = json.msg ?? null;
    finish(rec);
    sendRaw(res, status, text, 'application/json;charset=utf-8', headers);
  }

  function answerText(rec, res, status, body, type) {
    rec.httpStatus = status;
    finish(rec);
    sendRaw(res, status, body, `${type};charset=utf-8`);
  }

  // Recorded before the response goes out, so a test that has its answer (or its
  // transport error) already sees the record.
  function finish(rec) {
    requests.push(rec);
    if (!cfg.log) return;
    const { at, ...rest } = rec; // the record holds no secret and no checksum
    const entry = { time: new Date(at).toISOString(), ...rest };
    if (typeof cfg.log === 'function') cfg.log(entry);
    else process.stderr.write(`${JSON.stringify(entry)}\n`);
  }

  // --- control API (in-process and over HTTP) -------------------------------

  const emu = {
    url: `http://${urlHost(cfg.host)}:${port}`,
    port,
    deliveries: () => structuredClone(deliveries),
    deliveryCounts: () => Object.fromEntries(counts),
    requests: () => structuredClone(requests),
    injectFaults: (spec) => faults.add(spec),
    faults: () => faults.list(),
    clearFaults: () => faults.clear(),
    quotaStats: () => quota.stats(),
    setQuota(next) {
      quota.set(next);
      return quota.stats();
    },
    reset() {
      deliveries = [];
      counts = new Map();
      requests = [];
      replayCache = new Map();
      faults.reset();
      quota.reset();
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      return done;
    },
  };

  // Unsigned, for tests driving a separate emulator process. Bind to localhost only.
  async function control(req, res, path) {
    const routes = {
      'GET /_emulator/deliveries': () => emu.deliveries(),
      'GET /_emulator/requests': () => emu.requests(),
      'GET /_emulator/counts': () => emu.deliveryCounts(),
      'GET /_emulator/faults': () => emu.faults(),
      'POST /_emulator/faults': (body) => ({ ok: true, faults: emu.injectFaults(body) }),
      'DELETE /_emulator/faults': () => (emu.clearFaults(), { ok: true }),
      'POST /_emulator/reset': () => (emu.reset(), { ok: true }),
      'GET /_emulator/quota': () => emu.quotaStats(),
      'POST /_emulator/quota': (body) => emu.setQuota(body ?? null),
    };
    const raw = await readBody(req, cfg.maxBodyBytes);
    const handler = routes[`${req.method} ${path}`];
    if (!handler) {
      const known = Object.keys(routes).some((r) => r.endsWith(` ${path}`));
      return sendJson(res, known ? 405 : 404, { error: known ? 'method not allowed' : 'not found' });
    }
    let body;
    try {
      body = raw && raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
      return sendJson(res, 200, handler(body));
    } catch (err) {
      return sendJson(res, 400, { error: String(err?.message ?? err) });
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  }

  return emu;
}

function normaliseOptions(options) {
  const {
    host = '127.0.0.1',
    port = 0,
    apps,
    unknownAccounts = (id) => id.startsWith('ghost'),
    knownAccounts,
    maxSkewSeconds = 300,
    seed = 1,
    allowUnknownFields = false,
    maxBodyBytes = 8 * 1024 * 1024,
    now = Date.now,
    log = false,
    quota = null,
  } = options;
  const entries = apps instanceof Map ? [...apps] : isPlainObject(apps) ? Object.entries(apps) : [];
  if (entries.length === 0) throw new TypeError('startEmulator: options.apps must map at least one appKey to its appSecret');
  for (const [key, secret] of entries) {
    if (typeof key !== 'string' || key === '' || typeof secret !== 'string' || secret === '') {
      throw new TypeError('startEmulator: every app needs a non-empty string appKey and appSecret');
    }
  }
  if (typeof unknownAccounts !== 'function') throw new TypeError('startEmulator: unknownAccounts must be a function');
  return {
    host,
    port,
    apps: new Map(entries),
    unknownAccounts,
    knownAccounts: knownAccounts == null ? null : new Set([...knownAccounts].map((id) => String(id).toLowerCase())),
    maxSkewSeconds,
    seed,
    allowUnknownFields,
    maxBodyBytes,
    now,
    log,
    quota: normaliseQuota(quota),
  };
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/** Unicode characters (code points), the unit of Yunxin's length limits. */
function charCount(s) {
  return [...s].length;
}

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function lowerCaseKeys(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}

// Node joins repeated headers into one string, except a few into arrays: take the string.
function headerValue(v) {
  if (Array.isArray(v)) v = v.join(', ');
  return typeof v === 'string' && v !== '' ? v : null;
}

function urlHost(host) {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

// Best effort, for the request log only: how many receivers did the client send?
function peekReceiverCount(raw) {
  try {
    const ids = JSON.parse(raw.toString('utf8'))?.receiver_ids;
    return Array.isArray(ids) ? ids.length : null;
  } catch {
    return null;
  }
}

/** The whole body as a Buffer, or null if it exceeds maxBytes (still drained). */
function readBody(req, maxBytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > maxBytes ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  sendRaw(res, status, JSON.stringify(value), 'application/json;charset=utf-8');
}

function sendText(res, status, body) {
  sendRaw(res, status, body, 'text/plain;charset=utf-8');
}

function sendRaw(res, status, body, contentType, headers = {}) {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
