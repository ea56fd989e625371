// The public API of yunxin-edge, shared by every runtime's entry file.
//
// Planning, validation, signing, classification of answers and the merge into a report
// are the Rust core, compiled to WebAssembly (./yunxin_edge.js is wasm-bindgen's glue).
// This file adds what the core deliberately leaves out, the I/O: `send()` with fetch,
// timeouts, retries and bounded concurrency. It also turns every error the core throws
// into a `YunxinError`, so callers can rely on `instanceof` and on `code/field/limit`.
//
// The entry files (node.cjs, node.mjs, workerd.js, deno.js, browser.js) load the
// WebAssembly module before they re-export this file; nothing here runs at import time.

import * as wasm from './yunxin_edge.js';

/** Yunxin's mainland data centre, used when no `baseUrl` is given. */
export const DEFAULT_BASE_URL = 'https://open.yunxinapi.com';
/** The path of the batch custom notification call. */
export const BATCH_PATH = '/im/v2/custom_notification/batch';
/** Most receivers Yunxin accepts in one call; `buildBatchRequests` splits above it. */
export const MAX_RECEIVERS_PER_REQUEST = 500;

const SEND_DEFAULTS = Object.freeze({ retries: 2, retryDelayMs: 200, timeoutMs: 10_000, concurrency: 6 });

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * Every error this package throws. `code` is stable and machine-readable ('too_long',
 * 'missing', 'invalid', 'callback', ...); `field` names the input at fault
 * ('content', 'receiver_ids[3]'); `limit` is the documented limit that was crossed.
 * Messages never contain the app secret.
 */
export class YunxinError extends Error {
  constructor(message, { code, field, limit, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'YunxinError';
    this.code = code ?? 'internal';
    this.field = field ?? undefined;
    this.limit = limit ?? undefined;
  }
}

// Calls into WebAssembly go through here. The core throws a plain Error named
// 'YunxinError' (it cannot construct this class); anything else escaping is a bug, and
// is still reported as a YunxinError rather than a bare value or a wasm trap.
function core(fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    throw asYunxinError(error);
  }
}

// Documents (the notification, a stored request, report parts) cross into WebAssembly as
// JSON text and results come back as JSON text. Stringifying here means that cycles,
// BigInts and throwing getters fail in JavaScript, where they can be reported, instead
// of deep inside WebAssembly.
function toJson(value, field) {
  if (value === undefined || value === null) return undefined;
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw invalid(field, `cannot be turned into JSON (${error?.message ?? error})`);
  }
}

function coreJson(fn, ...args) {
  return JSON.parse(core(fn, ...args));
}

// Binary data reaches WebAssembly as a fresh Uint8Array made here over the caller's bytes
// (any ArrayBuffer or view: Buffer, DataView, Int8Array…), text as it is. WebAssembly
// then never reads the caller's object itself, whose getters or Proxy traps could throw
// from inside it.
function binary(value, field) {
  if (value === undefined || value === null || typeof value === 'string') return value;
  try {
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
  } catch (error) {
    throw invalid(field, `could not be read as bytes (${error?.message ?? error})`);
  }
  throw invalid(field, `must be a string, an ArrayBuffer or a typed array (got ${typeName(value)})`);
}

function typeName(value) {
  return Array.isArray(value) ? 'array' : typeof value;
}

function asYunxinError(error) {
  if (error instanceof YunxinError) return error;
  if (error instanceof Error && error.name === 'YunxinError' && typeof error.code === 'string') {
    return new YunxinError(error.message, { code: error.code, field: error.field, limit: error.limit });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new YunxinError(`internal error in yunxin-edge: ${detail}`, { code: 'internal', cause: error });
}

function invalid(field, message) {
  return new YunxinError(`\`${field}\` is invalid: ${message}`, { code: 'invalid', field });
}

// ---------------------------------------------------------------------------
// The core, one call each
// ---------------------------------------------------------------------------

/** Lowercase hex SHA1(appSecret + nonce + curTime): Yunxin's CheckSum. */
export function checksum(appSecret, nonce, curTime) {
  return core(wasm.checksum, appSecret, nonce, curTime);
}

/** The AppKey, Nonce, CurTime and CheckSum headers (plus X-custom-traceid when given). */
export function signHeaders(credentials, options) {
  return coreJson(wasm.signHeaders, credentials, options);
}

/**
 * Validates the notification, removes duplicate receivers (case-insensitively), splits
 * them into calls of at most 500 and signs each: `fetch(request.url, request)` sends one.
 */
export function buildBatchRequests(credentials, notification, options) {
  return coreJson(wasm.buildBatchRequests, credentials, toJson(notification, 'notification'), options);
}

/**
 * The checks of buildBatchRequests without credentials, for code that must not hold the
 * app secret (a browser form): `{ receiverIds, requestCount }` after de-duplication.
 */
export function validateNotification(notification, options) {
  return coreJson(wasm.validateNotification, toJson(notification, 'notification'), options);
}

/** The same request with a fresh signature and the same trace id, for a retry. */
export function resignRequest(credentials, request, options) {
  return coreJson(wasm.resignRequest, credentials, toJson(request, 'request'), options);
}

/** Yunxin's answer (text, bytes or parsed JSON), checked and normalised. */
export function parseBatchResponse(json) {
  const isData = typeof json === 'object' && json !== null && !ArrayBuffer.isView(json) && !(json instanceof ArrayBuffer);
  return coreJson(wasm.parseBatchResponse, isData ? toJson(json, 'json') : binary(json, 'json'));
}

/** What became of one call, from its HTTP status and body, with the retry verdict. */
export function classifyResponse(status, body) {
  return coreJson(wasm.classifyResponse, status, binary(body, 'body'));
}

/** The outcome of a call that got no Yunxin answer (network error, timeout). */
export function transportFailure(reason, httpStatus) {
  return coreJson(wasm.transportFailure, reason, httpStatus);
}

/** One per-receiver report from `[{ receiverIds, outcome }]`; a missing outcome means "not sent". */
export function mergeReport(parts) {
  return coreJson(wasm.mergeReport, toJson(parts, 'parts'));
}

/**
 * Checks a callback Yunxin POSTed to the app server (抄送): AppKey, the MD5 of the raw
 * body, CheckSum and the age of CurTime. Throws a YunxinError with code 'callback' that
 * says which check failed; returns nothing when the callback is genuine.
 * `headers`: a Headers object, Node's `req.headers`, or any object of name → value.
 * `body`: the raw body, preferably as bytes (text is hashed as its UTF-8 encoding).
 */
export function verifyYunxinCallback(credentials, headers, body, options) {
  let callbackHeaders;
  try {
    const read = headerReader(headers);
    callbackHeaders = { appKey: read('AppKey'), curTime: read('CurTime'), md5: read('MD5'), checkSum: read('CheckSum') };
  } catch (error) {
    if (error instanceof YunxinError) throw error;
    throw invalid('headers', `could not be read (${error?.message ?? error})`);
  }
  core(wasm.verifyCallback, credentials, callbackHeaders, binary(body, 'body'), options);
}

// Headers come as a Headers object (fetch, Workers, Deno), as Node's lower-cased
// `req.headers` (arrays for repeated headers) or as a hand-written object.
function headerReader(headers) {
  if (headers === null || typeof headers !== 'object') {
    throw invalid('headers', 'must be a Headers object or an object of header names to values');
  }
  if (typeof headers.get === 'function') return (name) => headers.get(name) ?? undefined;
  return (name) => {
    const wanted = name.toLowerCase();
    const entry = Object.entries(headers).find(([key]) => key.toLowerCase() === wanted);
    const value = entry?.[1];
    return Array.isArray(value) ? value.join(', ') : value;
  };
}

// ---------------------------------------------------------------------------
// send(): the whole job over fetch
// ---------------------------------------------------------------------------

/**
 * Sends a notification to any number of receivers and resolves to the per-receiver
 * report. Rejects only for invalid input (a YunxinError); upstream failures are in the
 * report. Calls run at most `concurrency` at a time; a retryable failure (transport
 * error, 5xx, Yunxin 449/500/503/514) is retried up to `retries` times with the same
 * trace id and a fresh signature. A 416 (rate limit) is not retried here: its receivers
 * are reported as retryable with `retry_after_secs` 60.
 */
export async function send(credentials, notification, options = {}) {
  const settings = sendSettings(options);
  const requests = buildBatchRequests(credentials, notification, {
    baseUrl: options.baseUrl,
    eventId: options.eventId,
    maxReceivers: options.maxReceivers,
  });

  const outcomes = new Array(requests.length).fill(null); // null: never sent
  let next = 0;
  const worker = async () => {
    while (next < requests.length && !settings.signal?.aborted) {
      const i = next++;
      outcomes[i] = await deliver(credentials, requests[i], settings);
    }
  };
  const workers = Math.min(settings.concurrency, requests.length);
  await Promise.all(Array.from({ length: workers }, worker));

  return mergeReport(requests.map((request, i) => ({ receiverIds: request.receiverIds, outcome: outcomes[i] })));
}

// One call until it succeeds, fails for good, or runs out of attempts.
async function deliver(credentials, request, settings) {
  let attempt = request;
  for (let retry = 1; ; retry++) {
    const outcome = await sendOnce(attempt, settings);
    const { verdict, min_delay_secs: minDelaySecs } = outcome.retry;
    // A verdict with a delay (416: about a minute) is the caller's to schedule: waiting
    // here would hold a Worker or a request handler open for that long.
    if (verdict !== 'retry' || minDelaySecs > 0 || retry > settings.retries || settings.signal?.aborted) {
      return outcome;
    }
    await sleep(settings.retryDelayMs * 2 ** (retry - 1), settings.signal);
    // Same trace id and body (Yunxin then delivers at most once), new Nonce/CurTime/CheckSum.
    attempt = resignRequest(credentials, request);
  }
}

async function sendOnce(request, { fetch, timeoutMs, signal }) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const abortWithCaller = () => controller.abort();
  signal?.addEventListener('abort', abortWithCaller, { once: true });
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: controller.signal,
    });
    // The body is read under the same timeout: a stalled body is as bad as no answer.
    const text = await response.text();
    return classifyResponse(response.status, text);
  } catch (error) {
    let reason;
    if (signal?.aborted) reason = 'aborted by the caller';
    else if (controller.signal.aborted) reason = `no answer within ${timeoutMs} ms`;
    else reason = describe(error);
    return transportFailure(reason);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abortWithCaller);
  }
}

// undici hides the useful part ("ECONNREFUSED") in `cause`. URLs and codes only: no
// header of the request (which holds the CheckSum) is ever part of a fetch error.
function describe(error) {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  const detail = cause?.code ?? (cause instanceof Error ? cause.message : undefined);
  return detail && !error.message.includes(detail) ? `${error.message} (${detail})` : error.message;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function sendSettings(options) {
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
  const injected = options.fetch ?? undefined;
  if (injected !== undefined && typeof injected !== 'function') throw invalid('fetch', 'must be a function');
  if (injected === undefined && typeof globalThis.fetch !== 'function') {
    throw new YunxinError('no fetch: this runtime has no global fetch, pass `options.fetch`', {
      code: 'unsupported',
      field: 'fetch',
    });
  }
  const signal = options.signal ?? undefined;
  if (signal !== undefined && (typeof signal !== 'object' || typeof signal.addEventListener !== 'function')) {
    throw invalid('signal', 'must be an AbortSignal');
  }
  return {
    // Never called as a method of `options`: a browser's fetch refuses a `this` other
    // than the global object (or undefined).
    fetch: injected !== undefined ? (url, init) => injected(url, init) : (url, init) => globalThis.fetch(url, init),
    retries: whole(options, 'retries', 0),
    retryDelayMs: whole(options, 'retryDelayMs', 0),
    timeoutMs: whole(options, 'timeoutMs', 1),
    concurrency: whole(options, 'concurrency', 1),
    signal,
  };
}

function whole(options, name, min) {
  const value = options[name] ?? SEND_DEFAULTS[name];
  if (!Number.isSafeInteger(value)) throw invalid(name, `must be a whole number (got ${typeof value})`);
  if (value < min) {
    throw new YunxinError(`\`${name}\` must be at least ${min}, got ${value}`, { code: 'too_few', field: name, limit: min });
  }
  return value;
}
