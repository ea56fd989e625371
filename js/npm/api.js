// The public API of yunxin-edge, shared by every runtime's entry file.
//
// Planning, validation, signing, classification of answers, the merge into a report and
// every retry rule are the Rust core, compiled to WebAssembly (./yunxin_edge.js is
// wasm-bindgen's glue). This file adds what the core deliberately leaves out, the I/O:
// `send()` drives the core's delivery state machine with fetch, per-attempt timeouts,
// bounded concurrency, timers and an abort signal; it decides no retry itself. It also
// turns every error the core throws into a `YunxinError`, so callers can rely on
// `instanceof` and on `code/field/limit`.
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

// The I/O settings of send(); the retry settings' defaults are the core's (js/src/delivery.rs).
// maxReceivers: a send() of millions of receivers is more likely a mistake (a whole user
// table) than a notification; a caller who means it says so.
const SEND_DEFAULTS = Object.freeze({ timeoutMs: 10_000, concurrency: 6, maxReceivers: 10_000 });
// The longest delay setTimeout keeps: a longer one fires after 1 ms instead.
const MAX_TIMER_MS = 2 ** 31 - 1;
// The option names each function takes; any other name is refused (see checkOptionNames).
const DELIVERY_OPTIONS = Object.freeze(['baseUrl', 'eventId', 'maxReceivers', 'retries', 'retryDelayMs', 'maxWaitMs']);
const SEND_OPTIONS = Object.freeze([...DELIVERY_OPTIONS, 'fetch', 'timeoutMs', 'concurrency', 'signal', 'onProgress']);

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

// A notification crosses as its UTF-8 bytes: TextEncoder encodes natively, and the
// bytes are copied into WebAssembly at once, where a string would be copied by a
// JavaScript loop over its characters (a third of a millisecond for 10,000 receivers).
// A notification given as bytes (a request body, a file) is already its JSON text and
// goes to the core's parser as it is: a syntax error names its line and column, and
// the numbers of an object `content` keep every digit.
const utf8 = new TextEncoder();
function toJsonBytes(value, field) {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return binary(value, field);
  const text = toJson(value, field);
  return text === undefined ? undefined : utf8.encode(text);
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
  return unpackRequests(core(wasm.buildBatchRequests, credentials, toJsonBytes(notification, 'notification'), options));
}

// The requests as the core packs them (js/src/output.rs, pack_requests): a line of JSON
// with each call's small fields, then the bodies back to back, then every receiver,
// separated by '\n'. For thousands of receivers this is several times cheaper than
// JSON.parse of the same objects (bodies escaped as JSON strings, receivers parsed one
// string at a time); the objects are the same, with the same keys in the same order.
function unpackRequests(packed) {
  const callsEnd = packed.indexOf('\n');
  const calls = JSON.parse(packed.slice(0, callsEnd));
  let at = callsEnd + 1;
  const bodies = calls.map(({ bodyLength }) => packed.slice(at, (at += bodyLength)));
  const receivers = packed.slice(at).split('\n');
  let first = 0;
  const requests = calls.map(({ index, method, url, headers, traceId, receiverCount }, i) => ({
    index,
    method,
    url,
    headers,
    body: bodies[i],
    traceId,
    receiverIds: receivers.slice(first, (first += receiverCount)),
  }));
  if (first !== receivers.length) {
    throw new YunxinError(`internal error in yunxin-edge: ${receivers.length} receivers unpacked for ${first}`);
  }
  return requests;
}

/**
 * The checks of buildBatchRequests without credentials, for code that must not hold the
 * app secret (a browser form): `{ receiverIds, requestCount }` after de-duplication.
 */
export function validateNotification(notification, options) {
  return coreJson(wasm.validateNotification, toJsonBytes(notification, 'notification'), options);
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

/**
 * The outcome of a call that got no Yunxin answer and was not processed as far as the
 * caller can tell: connection refused, a name that did not resolve, an HTTP error page.
 */
export function transportFailure(reason, httpStatus) {
  return coreJson(wasm.transportFailure, reason, httpStatus);
}

/**
 * The outcome of a call whose request went out and whose answer was lost (a timeout, a
 * connection closed mid-answer): its receivers end `unknown`, as Yunxin may have
 * notified them. A retry with the same trace id is safe.
 */
export function answerLost(reason) {
  return coreJson(wasm.answerLost, reason);
}

/** One per-receiver report from `[{ receiverIds, outcome }]`; a missing outcome means "not sent". */
export function mergeReport(parts) {
  return coreJson(wasm.mergeReport, toJson(parts, 'parts'));
}

/**
 * Checks a callback Yunxin POSTed to the app server (抄送): AppKey, the MD5 of the raw
 * body, CheckSum and the age of CurTime. Throws a YunxinError with code 'callback' that
 * says which check failed; returns the body parsed as JSON when the callback is genuine
 * (a genuine body that is not JSON throws code 'json').
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
  const raw = binary(body, 'body');
  core(wasm.verifyCallback, credentials, callbackHeaders, raw, options);
  let text;
  try {
    text = typeof raw === 'string' ? raw : new TextDecoder('utf-8', { fatal: true }).decode(raw);
    return JSON.parse(text);
  } catch (error) {
    throw new YunxinError(`the callback's body is not JSON: ${error?.message ?? error}`, { code: 'json', field: 'body' });
  }
}

/**
 * The headers Yunxin sends with a callback of this raw body (AppKey, CurTime in
 * milliseconds, MD5, CheckSum): what verifyYunxinCallback accepts, for testing a
 * callback handler. `options.now`: the signing time (default: the clock).
 */
export function signYunxinCallback(credentials, body, options) {
  return coreJson(wasm.signCallback, credentials, binary(body, 'body'), options);
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
// Delivery: the core's retry rules, for any transport
// ---------------------------------------------------------------------------

/**
 * One notification's delivery to all its receivers, as the core's state machine: it says
 * what to send and when, and is told what became of each attempt. Every retry rule is
 * the core's (same trace id for a whole call again, a follow-up call with a new trace id
 * for receivers a partial failure named retryable, backoff, at least 60 s after a 416,
 * `Retry-After`, giving up on a wait over `maxWaitMs`). `send()` is this plus fetch.
 *
 *   const delivery = new Delivery(credentials, notification, { retries: 2 });
 *   for (let action = delivery.poll(); action.action !== 'done'; action = delivery.poll()) {
 *     if (action.action === 'wait') { await sleepUntil(action.untilMs); continue; }
 *     const outcome = await myTransport(action.request); // an outcome object
 *     delivery.record(action.id, outcome);
 *   }
 *
 * Holds WebAssembly memory: call `free()` when done with it (a FinalizationRegistry
 * frees it otherwise, eventually).
 */
export class Delivery {
  #driver;

  constructor(credentials, notification, options) {
    const bag = options ?? {};
    if (typeof bag !== 'object') throw invalid('options', 'must be an object');
    checkOptionNames(bag, DELIVERY_OPTIONS, 'new Delivery()');
    const settings = readOptions(() => deliverySettings(bag));
    this.#driver = core(() => new wasm.DeliveryDriver(credentials, toJsonBytes(notification, 'notification'), settings));
  }

  /**
   * What to do next: `{ action: 'send', id, request }` (signed now; send it, then
   * `record(id, …)`), `{ action: 'wait', untilMs }` (`null`: until an attempt in flight
   * is recorded) or `{ action: 'done', report }`. Poll again to start more at once.
   */
  poll(nowMs) {
    return coreJson(() => this.#live().poll(nowMs));
  }

  /**
   * What became of attempt `id`: an outcome as classifyResponse, transportFailure or
   * answerLost return it, and the answer's Retry-After in seconds, if any.
   */
  record(id, outcome, retryAfterSecs, nowMs) {
    const text = toJson(outcome, 'outcome');
    return coreJson(() => this.#live().record(id, text, retryAfterSecs, nowMs));
  }

  /** The per-receiver report so far (in flight or answer lost: `unknown`). */
  report() {
    return coreJson(() => this.#live().report());
  }

  /**
   * Counts of receivers so far: `{ total, delivered, failed, unknown, pending }`
   * (pending: in flight or waiting for a retry).
   */
  progress() {
    return progressCounts(coreJson(() => this.#live().progress()));
  }

  /** Frees the WebAssembly memory; the delivery cannot be used afterwards. */
  free() {
    this.#driver?.free();
    this.#driver = undefined;
  }

  #live() {
    if (this.#driver === undefined) throw new YunxinError('this Delivery was freed', { code: 'invalid' });
    return this.#driver;
  }
}

// ---------------------------------------------------------------------------
// send(): the whole job over fetch
// ---------------------------------------------------------------------------

/**
 * Sends a notification to any number of receivers and resolves to the per-receiver
 * report. Rejects only for invalid input (a YunxinError); upstream failures are in the
 * report. The core's delivery decides every retry; this function sends what it is told,
 * at most `concurrency` calls at a time, each within `timeoutMs`, and sleeps when told
 * to wait.
 */
export async function send(credentials, notification, options = {}) {
  const settings = sendSettings(options);
  const driver = core(() => new wasm.DeliveryDriver(credentials, toJsonBytes(notification, 'notification'), settings.delivery));
  try {
    return await drive(driver, settings);
  } finally {
    driver.free();
  }
}

function progressCounts({ delivered, failed, unknown, pending }) {
  return { total: delivered + failed + unknown + pending, delivered, failed, unknown, pending };
}

// Polls the driver until it says wait (or until `concurrency` attempts are in flight),
// then waits for the first of: an attempt finished, the time it named, the caller's abort.
async function drive(driver, settings) {
  const { concurrency, signal } = settings;
  const inFlight = new Set();
  let failure; // an error of the core (a failing random source): reported once all settle
  const stopped = () => failure !== undefined || signal?.aborted === true;

  for (;;) {
    let untilMs = null;
    if (!stopped()) {
      try {
        while (inFlight.size < concurrency) {
          const action = JSON.parse(driver.poll(Date.now()));
          if (action.action === 'done') return action.report;
          if (action.action === 'wait') {
            untilMs = action.untilMs;
            break;
          }
          const running = attempt(driver, action, settings)
            .catch((error) => {
              failure ??= error instanceof ProgressError ? error : asYunxinError(error);
            })
            .finally(() => inFlight.delete(running));
          inFlight.add(running);
        }
      } catch (error) {
        failure ??= asYunxinError(error);
      }
    }
    if (inFlight.size === 0) {
      if (stopped() || untilMs === null) break;
      await sleepUntil(untilMs, signal).promise;
      continue;
    }
    const timer = untilMs === null || stopped() ? undefined : sleepUntil(untilMs, signal);
    await Promise.race(timer ? [...inFlight, timer.promise] : inFlight);
    timer?.cancel();
  }
  if (failure instanceof ProgressError) throw failure.error;
  if (failure !== undefined) throw failure;
  // Stopped by the caller: calls never sent are `not_attempted`, lost answers `unknown`.
  return JSON.parse(core(() => driver.report()));
}

// One attempt: send the request, and record what became of it. Only I/O and its
// classification happen here; what follows (a retry, when) is the core's decision.
async function attempt(driver, { id, request }, settings) {
  const { outcome, retryAfterSecs } = await exchange(request, settings);
  const recorded = driver.record(id, outcome, retryAfterSecs, Date.now());
  if (settings.onProgress !== undefined) {
    settings.attempts++;
    const progress = {
      ...progressCounts(JSON.parse(driver.progress())),
      attempts: settings.attempts,
      last: settledAttempt(id, request, outcome, recorded),
    };
    try {
      settings.onProgress(progress);
    } catch (error) {
      // Stops the send; the caller's own error, as it was thrown.
      throw new ProgressError(error);
    }
  }
}

// The attempt that just settled, for onProgress: which call (the ids poll() hands out
// are "{call}/{attempt}"), what became of it, and what the core made of that.
function settledAttempt(id, request, outcome, recorded) {
  const [call, number] = id.split('/').map(Number);
  return {
    call,
    attempt: number,
    traceId: request.traceId,
    receivers: request.receiverIds.length,
    outcome: JSON.parse(outcome),
    recorded: JSON.parse(recorded),
  };
}

// Carries what onProgress threw through drive(), which rejects with the error itself.
class ProgressError {
  constructor(error) {
    this.error = error;
  }
}

// Sends one request; returns its outcome (the core's JSON text) and the answer's
// Retry-After, and never throws.
async function exchange(request, { fetch, timeoutMs, signal }) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const abortWithCaller = () => controller.abort();
  if (signal?.aborted) controller.abort();
  signal?.addEventListener('abort', abortWithCaller, { once: true });
  // Settles the exchange when the timeout or the caller aborts, even with an injected
  // fetch that ignores its signal.
  let giveUp;
  const abandoned = new Promise((_, reject) => {
    giveUp = () => reject(new Error('aborted'));
    controller.signal.addEventListener('abort', giveUp, { once: true });
  });
  abandoned.catch(() => {});
  try {
    const response = await Promise.race([
      fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: controller.signal }),
      abandoned,
    ]);
    // The body is read under the same timeout: a stalled body is as bad as no answer.
    const text = await Promise.race([response.text(), abandoned]);
    return { outcome: core(wasm.classifyResponse, response.status, text), retryAfterSecs: retryAfter(response) };
  } catch (error) {
    // The request may have gone out: its fate is unknown, unless the error says the
    // connection was never made.
    if (signal?.aborted) return { outcome: core(wasm.answerLost, 'aborted by the caller') };
    if (timedOut) return { outcome: core(wasm.answerLost, `no answer within ${timeoutMs} ms`) };
    const reason = describe(error);
    return { outcome: core(notSent(error) ? wasm.transportFailure : wasm.answerLost, reason) };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abortWithCaller);
    controller.signal.removeEventListener('abort', giveUp);
  }
}

// Errors that say the request never left: no connection (refused, unreachable, timed
// out while connecting), no address (DNS), a TLS handshake refused. Anything else
// (a reset or closed socket: undici's UND_ERR_SOCKET, ECONNRESET, 'other side closed';
// an error without a code, as browsers and workerd give) may come after the request
// went out, and is an answer lost.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_INVALID_URL',
]);

function notSent(error) {
  return causes(error).some(
    (e) =>
      e?.syscall === 'connect' ||
      e?.syscall === 'getaddrinfo' ||
      (typeof e?.code === 'string' && (NOT_SENT_CODES.has(e.code) || /CERT|^ERR_TLS_|^ERR_SSL_/.test(e.code))),
  );
}

// The error, its causes and, for an AggregateError (Node's happy eyeballs), its errors.
function causes(error) {
  const out = [];
  const visit = (e, depth) => {
    if (e === null || typeof e !== 'object' || depth > 8 || out.includes(e)) return;
    out.push(e);
    visit(e.cause, depth + 1);
    if (Array.isArray(e.errors)) for (const inner of e.errors) visit(inner, depth + 1);
  };
  visit(error, 0);
  return out;
}

// undici hides the useful part ("ECONNREFUSED") in `cause`. URLs and codes only: no
// header of the request (which holds the CheckSum) is ever part of a fetch error.
function describe(error) {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  const detail = cause?.code ?? (cause instanceof Error ? cause.message : undefined);
  return detail && !error.message.includes(detail) ? `${error.message} (${detail})` : error.message;
}

// The answer's Retry-After in seconds (delta-seconds or an HTTP date), if it has one;
// the core decides what to make of it.
function retryAfter(response) {
  let value;
  try {
    value = response.headers?.get?.('retry-after');
  } catch {
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Math.min(Number(value), Number.MAX_SAFE_INTEGER);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

// Resolves at `untilMs` (in steps setTimeout can hold) or when the signal aborts.
function sleepUntil(untilMs, signal) {
  let timer;
  let done;
  const promise = new Promise((resolve) => {
    done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    if (signal?.aborted) return done();
    signal?.addEventListener('abort', done, { once: true });
    const arm = () => {
      const left = untilMs - Date.now();
      if (left <= 0) return done();
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
  });
  return { promise, cancel: done };
}

function sendSettings(options) {
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
  checkOptionNames(options, SEND_OPTIONS, 'send()');
  return readOptions(() => {
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
    const onProgress = options.onProgress ?? undefined;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid('onProgress', 'must be a function');
    return {
      onProgress,
      attempts: 0,
      // Never called as a method of `options`: a browser's fetch refuses a `this` other
      // than the global object (or undefined).
      fetch: injected !== undefined ? (url, init) => injected(url, init) : (url, init) => globalThis.fetch(url, init),
      timeoutMs: whole(options, 'timeoutMs', 1, MAX_TIMER_MS) ?? SEND_DEFAULTS.timeoutMs,
      concurrency: whole(options, 'concurrency', 1) ?? SEND_DEFAULTS.concurrency,
      signal,
      delivery: { ...deliverySettings(options), maxReceivers: options.maxReceivers ?? SEND_DEFAULTS.maxReceivers },
    };
  });
}

// The settings the core's delivery reads, copied into a plain object (so that the core
// never runs a getter of the caller's) and checked here for what JavaScript alone knows:
// timers. Types and the notification are the core's to check.
function deliverySettings(options) {
  return {
    baseUrl: options.baseUrl,
    eventId: options.eventId,
    maxReceivers: options.maxReceivers,
    retries: whole(options, 'retries', 0),
    retryDelayMs: whole(options, 'retryDelayMs', 0, MAX_TIMER_MS),
    maxWaitMs: whole(options, 'maxWaitMs', 0, MAX_TIMER_MS),
  };
}

// Reads an options bag; a getter or Proxy trap that throws makes it invalid input.
function readOptions(read) {
  try {
    return read();
  } catch (error) {
    if (error instanceof YunxinError) throw error;
    throw invalid('options', `could not be read (${error?.message ?? error})`);
  }
}

// A whole-number option, or undefined when unset.
function whole(options, name, min, max = Number.MAX_SAFE_INTEGER) {
  const value = options[name] ?? undefined;
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value)) throw invalid(name, `must be a whole number (got ${typeName(value)})`);
  if (value < min) {
    throw new YunxinError(`\`${name}\` must be at least ${min}, got ${value}`, { code: 'too_few', field: name, limit: min });
  }
  if (value > max) {
    // setTimeout turns a longer delay into 1 ms without a word.
    throw new YunxinError(`\`${name}\` must be at most ${max} ms (the longest timer JavaScript keeps), got ${value}`, {
      code: 'too_many',
      field: name,
      limit: max,
    });
  }
  return value;
}

// Refuses an option this function does not take, so that a misspelt one (`baseURL`,
// `timeout`) is an error rather than a setting silently ignored.
function checkOptionNames(options, known, owner) {
  const names = readOptions(() => Object.keys(options));
  for (const name of names) {
    if (known.includes(name)) continue;
    const guess = closestName(name, known);
    const hint = guess === undefined ? ` (its options: ${known.join(', ')})` : `; did you mean \`${guess}\`?`;
    throw new YunxinError(`\`${name}\` is not an option of ${owner}${hint}`, { code: 'invalid', field: name });
  }
}

// The known name `name` most likely meant: the same but for case (baseURL), the same
// but for a unit (timeout, retryDelaySecs), or at most two typos away (retires).
function closestName(name, known) {
  const lower = name.toLowerCase();
  const stem = (text) => text.toLowerCase().replace(/(ms|millis|milliseconds|secs|seconds)$/, '');
  const same = known.find((k) => k.toLowerCase() === lower) ?? known.find((k) => stem(k) === stem(name));
  if (same !== undefined || name.length < 4) return same;
  let best;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}
