// Type declarations of yunxin-edge, for every entry (Node, Workers, Deno, browsers).
// Field names of the notification, the answer and the report are Yunxin's (snake_case);
// options and requests, which this package defines, are camelCase. Optional inputs
// also accept `undefined` (as absent), for projects with exactOptionalPropertyTypes.
// Self-contained: they type-check with `lib: ["es2022"]` alone (no DOM lib, no
// @types/node); where a DOM or Node lib is present, signals are its AbortSignal.

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/** An app's key and secret from the Yunxin console. The secret must stay server-side. */
export interface Credentials {
  appKey: string;
  appSecret: string;
}

/** A Yunxin IM account id (accid): at most 32 characters; Yunxin lower-cases it. */
export type AccountId = string;

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Push settings (`push_config`). */
export interface PushConfig {
  /** Whether the notification is pushed (default true). */
  push_enabled?: boolean | undefined;
  /** Whether the push shows the sender's nickname (default true). */
  push_nick_enabled?: boolean | undefined;
  /** Push text, at most 500 characters; without it no text is shown. */
  push_content?: string | undefined;
  /** Push payload (a JSON string), at most 2048 characters. */
  push_payload?: string | undefined;
  /** Enables forced push (official SDKs only). */
  push_forcepush_enable?: boolean | undefined;
  /** Force-push to everyone (default false). */
  push_forcepush_all?: boolean | undefined;
  /** Accounts to force-push to, at most 100. */
  push_forcepush_ids?: readonly AccountId[] | undefined;
  /** Forced push text, at most 500 characters. */
  push_forcepush_content?: string | undefined;
}

/** Copy-to-app-server settings (`route_config`, 抄送). */
export interface RouteConfig {
  /** Whether the notification is copied to the app server (default true). */
  route_enabled?: boolean | undefined;
  /** The environment the copy is routed to. */
  route_environment?: string | undefined;
}

/**
 * Notification settings (`notification_config`). The sources disagree on its fields, so
 * both spellings are accepted: `offline_enabled`/`unread_enabled` (official docs and
 * SDKs) and the other four (the original API page's field table).
 */
export interface NotificationConfig {
  /** Whether the notification is stored for offline receivers. */
  offline_enabled?: boolean | undefined;
  /** Whether the notification counts as unread. */
  unread_enabled?: boolean | undefined;
  /** Whether the notification is delivered as a notification (default true). */
  notification_enabled?: boolean | undefined;
  /** App-defined extension. */
  notification_extension?: string | undefined;
  /** High-priority flag (default 0), a whole number. */
  high_priority?: number | undefined;
  /** High-priority policy (default 0), a whole number. */
  high_priority_policy?: number | undefined;
}

/**
 * One custom system notification for any number of receivers: the body of Yunxin's
 * batch call, except that `receiver_ids` may hold more than 500 ids (they are split into
 * several calls) and may repeat an id (duplicates are removed, case-insensitively).
 * Fields set to `undefined` or `null` count as absent; unknown fields are an error.
 */
export interface BatchNotification {
  /** The sending account. */
  sender_id: AccountId;
  /** The receiving accounts, at least one. */
  receiver_ids: readonly AccountId[];
  /**
   * The notification text, at most 4096 characters (Unicode characters, not bytes).
   * Any other JSON value is sent as its compact JSON text.
   */
  content: string | JsonValue[] | { [key: string]: JsonValue };
  /** Sound file name, at most 30 characters. */
  sound?: string | undefined;
  push_config?: PushConfig | undefined;
  route_config?: RouteConfig | undefined;
  notification_config?: NotificationConfig | undefined;
}

/**
 * A notification as an object, or as its JSON text in bytes (a request body, a file read
 * with `readFileSync`), which the core parses as it is: a syntax error names its line
 * and column, and the numbers of an object `content` keep every digit.
 */
export type NotificationInput = BatchNotification | ArrayBuffer | ArrayBufferView;

/** A point in time: milliseconds since 1970 (like `Date.now()`) or a `Date`. */
export type Instant = number | Date;

/** Options of {@link signHeaders}. */
export interface SignOptions {
  /** The signing time; the runtime's clock by default. */
  now?: Instant | undefined;
  /** The Nonce, at most 128 characters; 32 random hex characters by default. */
  nonce?: string | undefined;
  /** Adds `X-custom-traceid`. */
  traceId?: string | undefined;
}

/** Options of {@link buildBatchRequests}. */
export interface BuildOptions {
  /** Yunxin's base URL, e.g. `https://open-sg.yunxinapi.com`; {@link DEFAULT_BASE_URL} by default. */
  baseUrl?: string | undefined;
  /**
   * Derives each call's trace id from this id, so that building the same event again
   * (a re-delivered webhook, a retried job) yields the same trace ids and Yunxin does
   * not deliver twice. Random trace ids without it.
   */
  eventId?: string | undefined;
  /** Refuses notifications with more unique receivers than this (code `too_many`). */
  maxReceivers?: number | undefined;
  /** The signing time; the runtime's clock by default. */
  now?: Instant | undefined;
}

/** Options of {@link resignRequest}. */
export interface ResignOptions {
  /** The signing time; the runtime's clock by default. */
  now?: Instant | undefined;
  /** The Nonce; 32 random hex characters by default. */
  nonce?: string | undefined;
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/** Yunxin's authentication headers. */
export type SignedHeaders = {
  AppKey: string;
  Nonce: string;
  /** UNIX seconds, as decimal text. */
  CurTime: string;
  /** Lowercase hex SHA1(AppSecret + Nonce + CurTime); valid for 5 minutes. */
  CheckSum: string;
  /** Present when a trace id was given. */
  'X-custom-traceid'?: string;
};

/** The headers of a batch call. */
export type BatchRequestHeaders = {
  AppKey: string;
  Nonce: string;
  CurTime: string;
  CheckSum: string;
  /** Yunxin de-duplicates calls by it: a retry keeps it. */
  'X-custom-traceid': string;
  'Content-Type': string;
};

/** One signed batch call of at most 500 receivers: `fetch(request.url, request)` sends it. */
export interface BatchRequest {
  /** Position of the call in its plan, from 0. */
  readonly index: number;
  readonly method: 'POST';
  readonly url: string;
  readonly headers: BatchRequestHeaders;
  /** The JSON body. */
  readonly body: string;
  /** The call's `X-custom-traceid`. */
  readonly traceId: string;
  /** The call's receivers, as the caller spelled them. */
  readonly receiverIds: AccountId[];
}

// ---------------------------------------------------------------------------
// Answers, outcomes, reports
// ---------------------------------------------------------------------------

/** A receiver Yunxin did not deliver to, as it answers. */
export interface FailedReceiver {
  account_id: AccountId;
  /** Six digits: 1 + resource (2) + code (3), e.g. 102404 (account does not exist). */
  error_code: number;
  error_msg: string;
}

/** Yunxin's answer to a batch call, normalised (missing lists are empty). */
export interface BatchResponse {
  /** 200 when the call was accepted (which may still fail some receivers). */
  code: number;
  msg: string;
  data: {
    success_list: AccountId[];
    failed_list: FailedReceiver[];
  };
}

/** Whether a failure is worth another try, and how soon. */
export type RetryVerdict = { verdict: 'permanent' } | { verdict: 'retry'; min_delay_secs: number };

/** Code 200 and no failed receiver. */
export interface DeliveredOutcome {
  kind: 'delivered';
  success: AccountId[];
  retry: RetryVerdict;
}

/** Code 200, but some receivers failed: not a success. */
export interface PartialFailureOutcome {
  kind: 'partial_failure';
  success: AccountId[];
  failed: FailedReceiver[];
  retry: RetryVerdict;
}

/** Yunxin refused the whole call (e.g. 414 bad signature, 416 rate limit). */
export interface RejectedOutcome {
  kind: 'rejected';
  code: number;
  msg: string;
  retry: RetryVerdict;
}

/**
 * No Yunxin answer, and the call was not processed as far as the caller can tell: the
 * connection was refused, the name did not resolve, an HTTP error page.
 */
export interface TransportOutcome {
  kind: 'transport';
  http_status: number | null;
  reason: string;
  retry: RetryVerdict;
}

/**
 * The request went out and its answer was lost (a timeout, a connection closed
 * mid-answer): Yunxin may have notified the receivers. Its receivers end `unknown`.
 */
export interface AnswerLostOutcome {
  kind: 'answer_lost';
  reason: string;
  retry: RetryVerdict;
}

/** What became of one batch call. */
export type Outcome = DeliveredOutcome | PartialFailureOutcome | RejectedOutcome | TransportOutcome | AnswerLostOutcome;

/** One call's share of a report. A {@link BatchRequest} with an `outcome` is one. */
export interface ReportPart {
  receiverIds: readonly AccountId[];
  /** Absent or `null`: the call was never sent. */
  outcome?: Outcome | null | undefined;
}

/** A receiver that did not get the notification. */
export interface Failure {
  account_id: AccountId;
  /** Yunxin's code, or the HTTP status of a transport failure (0 when there was none). */
  error_code: number;
  error_msg: string;
  /** Whether a later attempt may succeed. */
  retryable: boolean;
}

/**
 * A receiver whose fate is unknown: its call went out and the answer was lost, so Yunxin
 * may have notified it. Sending again with the same trace id (the same `eventId`) is
 * safe: Yunxin drops a call it has already processed.
 */
export interface Unknown {
  account_id: AccountId;
  /** What happened, e.g. `request sent, answer lost: no answer within 10000 ms`. */
  reason: string;
}

/** A receiver whose call was never sent. */
export interface NotAttempted {
  account_id: AccountId;
  reason: string;
}

/** Every receiver of a notification, each exactly once. */
export interface Report {
  delivered: AccountId[];
  failed: Failure[];
  unknown: Unknown[];
  not_attempted: NotAttempted[];
  /**
   * Present when some failure is retryable or some receiver unknown: the least time to
   * wait before sending them again, in seconds.
   */
  retry_after_secs?: number;
}

// ---------------------------------------------------------------------------
// send()
// ---------------------------------------------------------------------------

/** What this package needs of an `AbortSignal`, when no lib declares one. */
export interface AbortSignalMinimal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An `AbortSignal`: the runtime's own type where a lib declares it (DOM, @types/node,
 * Deno, Workers), else {@link AbortSignalMinimal}.
 */
export type AbortSignalLike = typeof globalThis extends { AbortSignal: { prototype: infer Signal } }
  ? Signal
  : AbortSignalMinimal;

/** What {@link send} passes to `fetch`. */
export interface FetchInit {
  method: 'POST';
  headers: BatchRequestHeaders;
  body: string;
  signal: AbortSignalLike;
}

/** What {@link send} reads from `fetch`'s answer. */
export interface FetchResponse {
  readonly status: number;
  text(): Promise<string>;
  /** `Retry-After` is read from here when present. */
  readonly headers?: { get(name: string): string | null } | undefined;
}

/** A `fetch`: the runtime's global one fits. */
export type FetchFunction = (url: string, init: FetchInit) => Promise<FetchResponse>;

/** Options of a {@link Delivery}: planning and the retry policy. */
export interface DeliveryOptions {
  /**
   * Yunxin's base URL, e.g. `https://open-sg.yunxinapi.com`.
   * @default 'https://open.yunxinapi.com'
   */
  baseUrl?: string | undefined;
  /** See {@link BuildOptions.eventId}. */
  eventId?: string | undefined;
  /** See {@link BuildOptions.maxReceivers}. */
  maxReceivers?: number | undefined;
  /**
   * Further attempts of a call after a retryable failure, follow-up calls for
   * receivers a partial failure named retryable included.
   * @default 2
   */
  retries?: number | undefined;
  /**
   * Wait before the first retry in ms, doubled for each further one; at most 2^31 - 1.
   * @default 200
   */
  retryDelayMs?: number | undefined;
  /**
   * The longest wait for a retry in ms (at most 2^31 - 1). A retry that needs longer
   * (a 416's minute, a longer `Retry-After`) is not made: its receivers end failed,
   * retryable, with `retry_after_secs`.
   * @default the longest wait of the schedule (600 ms with the other defaults)
   */
  maxWaitMs?: number | undefined;
}

/** Counts of receivers during a delivery; every unique receiver is in exactly one. */
export interface DeliveryProgress {
  /** Unique receivers of the notification. */
  total: number;
  delivered: number;
  failed: number;
  /** Their last answer was lost: Yunxin may have notified them. */
  unknown: number;
  /** In flight, or waiting for a retry. */
  pending: number;
}

/** What {@link SendOptions.onProgress} is called with. */
export interface SendProgress extends DeliveryProgress {
  /** Attempts (calls sent) that have settled so far. */
  attempts: number;
  /** The attempt that has just settled. */
  last: SettledAttempt;
}

/** One attempt of {@link send}'s, once it has settled. */
export interface SettledAttempt {
  /**
   * The call's position in the plan, from 0. A follow-up call for receivers a partial
   * failure named retryable keeps the number of the call they came from.
   */
  call: number;
  /** 1 for a call's first attempt; each retry or follow-up of it counts on. */
  attempt: number;
  /** Its `X-custom-traceid`. */
  traceId: string;
  /** How many receivers it was for. */
  receivers: number;
  /** What became of it. */
  outcome: Outcome;
  /** What the delivery made of that: a retry at `at_ms`, or done with the call. */
  recorded: Recorded;
}

/** Options of {@link send}. Any other name is refused (code `invalid`). */
export interface SendOptions extends DeliveryOptions {
  /**
   * Refuses notifications with more unique receivers than this (code `too_many`).
   * @default 10000
   */
  maxReceivers?: number | undefined;
  /**
   * The fetch to use.
   * @default globalThis.fetch
   */
  fetch?: FetchFunction | undefined;
  /**
   * Time allowed for each attempt in ms, answer body included; at most 2^31 - 1.
   * @default 10000
   */
  timeoutMs?: number | undefined;
  /**
   * Calls in flight at once.
   * @default 6
   */
  concurrency?: number | undefined;
  /**
   * Stops sending: calls not started yet are reported as `not_attempted`, calls in
   * flight as `unknown`.
   */
  signal?: AbortSignalLike | undefined;
  /**
   * Called after each attempt settles, with counts of receivers. If it throws, nothing
   * more is sent and {@link send} rejects with that error once the calls in flight
   * have settled.
   * @example
   * await send(credentials, notification, {
   *   onProgress: ({ total, pending }) => console.error(`${total - pending}/${total}`),
   * });
   */
  onProgress?: ((progress: SendProgress) => void) | undefined;
}

// ---------------------------------------------------------------------------
// Delivery: the core's retry rules, for any transport
// ---------------------------------------------------------------------------

/** One request a {@link Delivery} asks to send: a {@link BatchRequest} signed just now. */
export type AttemptRequest = BatchRequest;

/** What a {@link Delivery} asks for next. */
export type DeliveryAction =
  | {
      action: 'send';
      /** Pass it back to {@link Delivery.record} with the outcome. */
      id: string;
      request: AttemptRequest;
    }
  | {
      action: 'wait';
      /** When to poll again (UNIX ms); `null`: once an attempt in flight is recorded. */
      untilMs: number | null;
    }
  | { action: 'done'; report: Report };

/** What a {@link Delivery} made of a recorded outcome. */
export type Recorded =
  | { recorded: 'retry'; at_ms: number }
  | {
      recorded: 'done';
      /** Whether receivers were left failed (retryable) or unknown. */
      gave_up: boolean;
    }
  /** Not the attempt in flight (a late or duplicate report): ignored. */
  | { recorded: 'stale' };

/**
 * One notification's delivery to all its receivers: the state machine {@link send}
 * drives, for callers with their own transport. It holds every retry rule; the caller
 * sends what {@link Delivery.poll} says and {@link Delivery.record}s what became of it.
 * Holds WebAssembly memory: call {@link Delivery.free} when done.
 * @example
 * const delivery = new Delivery(credentials, notification, { retries: 2 });
 * try {
 *   for (let next = delivery.poll(); next.action !== 'done'; next = delivery.poll()) {
 *     if (next.action === 'wait') { await sleepUntil(next.untilMs); continue; }
 *     const response = await fetch(next.request.url, next.request);
 *     delivery.record(next.id, classifyResponse(response.status, await response.text()));
 *   }
 *   console.log(delivery.report());
 * } finally {
 *   delivery.free();
 * }
 */
export declare class Delivery {
  /**
   * Validates and plans the notification; nothing is sent yet.
   * @throws {YunxinError} invalid input: the notification, an option, an unknown option name.
   */
  constructor(credentials: Credentials, notification: NotificationInput, options?: DeliveryOptions);
  /** What to do next; poll again after a `send` to start more attempts at once. */
  poll(nowMs?: number): DeliveryAction;
  /**
   * What became of attempt `id`: an {@link Outcome} (from {@link classifyResponse},
   * {@link transportFailure} or {@link answerLost}) and the answer's `Retry-After` in seconds.
   */
  record(id: string, outcome: Outcome, retryAfterSecs?: number | null, nowMs?: number): Recorded;
  /** The report so far: attempts in flight or with a lost answer are `unknown`. */
  report(): Report;
  /** Counts of receivers so far. */
  progress(): DeliveryProgress;
  /** Frees the WebAssembly memory; the delivery cannot be used afterwards. */
  free(): void;
}

// ---------------------------------------------------------------------------
// Callbacks from Yunxin
// ---------------------------------------------------------------------------

/** A `Headers` object, Node's `req.headers`, or any object of header name to value. */
export type CallbackHeaders =
  | { get(name: string): string | null }
  | { readonly [name: string]: string | readonly string[] | undefined };

/** A raw request body. Bytes are hashed as they are; text as its UTF-8 encoding. */
export type CallbackBody = string | ArrayBuffer | ArrayBufferView;

/** Options of {@link verifyYunxinCallback}. */
export interface VerifyCallbackOptions {
  /**
   * The current time.
   * @default Date.now()
   */
  now?: Instant | undefined;
  /**
   * Largest accepted distance between CurTime and now, in ms.
   * @default 300000
   */
  toleranceMs?: number | undefined;
}

/** A callback's body as Yunxin sends it: a JSON object; `eventType` says which kind. */
export interface YunxinCallbackEvent {
  eventType?: string | undefined;
  [field: string]: JsonValue | undefined;
}

/** Options of {@link signYunxinCallback}. */
export interface SignCallbackOptions {
  /**
   * The signing time (`CurTime`).
   * @default Date.now()
   */
  now?: Instant | undefined;
}

/** The headers Yunxin sends with a callback. */
export type SignedCallbackHeaders = {
  AppKey: string;
  /** UNIX milliseconds, as decimal text. */
  CurTime: string;
  /** Lowercase hex MD5 of the raw body. */
  MD5: string;
  /** Lowercase hex SHA1(AppSecret + MD5 + CurTime). */
  CheckSum: string;
};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * `missing`, `too_long`, `too_few`, `too_many`, `invalid`, `json`: the input breaks a
 * documented limit or has the wrong type (`invalid` also for an unknown option name).
 * `invalid_schema`: the notification has a value of the wrong type or an unknown field
 * (`field` is its JSON path, e.g. `receiver_ids[3]`); `malformed_json`: it is not JSON.
 * `response`: Yunxin's answer is not its JSON. `callback`: a callback failed
 * verification. `unsupported`: the runtime lacks `fetch`, or its random source
 * (`crypto.getRandomValues`) fails. `internal`: a bug in this package.
 */
export type YunxinErrorCode =
  | 'missing'
  | 'too_long'
  | 'too_few'
  | 'too_many'
  | 'invalid'
  | 'invalid_schema'
  | 'malformed_json'
  | 'json'
  | 'response'
  | 'callback'
  | 'unsupported'
  | 'internal';

/** Every error this package throws. Messages never contain the app secret. */
export declare class YunxinError extends Error {
  constructor(
    message: string,
    details: { code: YunxinErrorCode; field?: string; limit?: number; cause?: unknown },
  );
  readonly name: 'YunxinError';
  readonly code: YunxinErrorCode;
  /** The input at fault, e.g. `content` or `receiver_ids[3]`. */
  readonly field: string | undefined;
  /** The documented limit that was crossed, e.g. 4096. */
  readonly limit: number | undefined;
}

// ---------------------------------------------------------------------------
// Functions and constants
// ---------------------------------------------------------------------------

/** Yunxin's mainland data centre. */
export declare const DEFAULT_BASE_URL: 'https://open.yunxinapi.com';
/** The path of the batch call. */
export declare const BATCH_PATH: '/im/v2/custom_notification/batch';
/** Most receivers per batch call. */
export declare const MAX_RECEIVERS_PER_REQUEST: 500;

/**
 * Lowercase hex SHA1(appSecret + nonce + curTime): Yunxin's CheckSum.
 * @example
 * checksum('secret', 'abc', '1443592222'); // '6461e65304e590d2268093aa1d290482274995b9'
 * @throws {YunxinError} code `invalid` when an argument is not a string (`curTime`: or a whole number).
 */
export declare function checksum(appSecret: string, nonce: string, curTime: string | number): string;

/**
 * Yunxin's authentication headers for one call of any server API.
 * @example
 * const response = await fetch(url, { method: 'POST', headers: { ...signHeaders(credentials), 'Content-Type': type }, body });
 * @throws {YunxinError} invalid credentials or options; code `unsupported` when the runtime has no random source.
 */
export declare function signHeaders(credentials: Credentials, options?: SignOptions): SignedHeaders;

/**
 * Validates the notification, removes duplicate receivers, splits them into calls of
 * at most 500 and signs each call: `fetch(request.url, request)` sends one.
 * @example
 * for (const request of buildBatchRequests(credentials, notification, { eventId: 'deploy-42' })) {
 *   const response = await fetch(request.url, request);
 *   console.log(request.traceId, classifyResponse(response.status, await response.text()).kind);
 * }
 * @throws {YunxinError} invalid input, with `code`, `field` and `limit` (e.g. `too_long`, `content`, 4096).
 */
export declare function buildBatchRequests(
  credentials: Credentials,
  notification: NotificationInput,
  options?: BuildOptions,
): BatchRequest[];

/** Options of {@link validateNotification}. */
export interface ValidateOptions {
  /** See {@link BuildOptions.maxReceivers}. */
  maxReceivers?: number | undefined;
}

/** What {@link validateNotification} returns. */
export interface ValidatedNotification {
  /** The receivers after de-duplication (case-insensitive, first spelling kept). */
  receiverIds: AccountId[];
  /** How many batch calls of at most 500 they need. */
  requestCount: number;
}

/**
 * The checks of {@link buildBatchRequests} without credentials, for code that must not
 * hold the app secret, such as a browser form that posts to the app's own server.
 * @example
 * const { receiverIds, requestCount } = validateNotification({ sender_id: 'ops', receiver_ids: ['a', 'A', 'b'], content: 'hi' });
 * // receiverIds: ['a', 'b'], requestCount: 1
 * @throws {YunxinError} invalid input, with `code`, `field` and `limit`.
 */
export declare function validateNotification(
  notification: NotificationInput,
  options?: ValidateOptions,
): ValidatedNotification;

/**
 * The same request with a fresh signature and the same trace id and body, for a retry:
 * a CheckSum is valid for 5 minutes, the trace id lets Yunxin deliver at most once.
 * @example
 * const again = resignRequest(credentials, storedRequest);
 * await fetch(again.url, again);
 * @throws {YunxinError} a request that is not one of {@link buildBatchRequests}' (code `invalid`/`invalid_schema`).
 */
export declare function resignRequest(
  credentials: Credentials,
  request: Pick<BatchRequest, 'url' | 'body' | 'traceId' | 'receiverIds'> & { index?: number },
  options?: ResignOptions,
): BatchRequest;

/**
 * Yunxin's answer (text, bytes or parsed JSON), checked and normalised.
 * @example
 * parseBatchResponse('{"code":200,"data":{"success_list":["a"]}}').data.failed_list; // []
 * @throws {YunxinError} code `response` when it is not Yunxin's JSON.
 */
export declare function parseBatchResponse(json: string | ArrayBuffer | ArrayBufferView | object): BatchResponse;

/**
 * What became of one call, from its HTTP status and body, with the retry verdict.
 * Never throws for an odd answer: that is an outcome too.
 * @example
 * const outcome = classifyResponse(response.status, await response.text());
 * if (outcome.retry.verdict === 'retry') scheduleRetry(outcome.retry.min_delay_secs);
 * @throws {YunxinError} code `invalid` when `status` is not an HTTP status.
 */
export declare function classifyResponse(status: number, body?: string | ArrayBuffer | ArrayBufferView): Outcome;

/**
 * The outcome of a call without a Yunxin answer that was not processed as far as the
 * caller can tell: connection refused, no such host, an HTTP error page.
 * @example
 * delivery.record(id, transportFailure('connect ECONNREFUSED'));
 * @throws {YunxinError} code `invalid` for a reason that is not a string.
 */
export declare function transportFailure(reason: string, httpStatus?: number | null): TransportOutcome;

/**
 * The outcome of a call whose request went out and whose answer was lost (a timeout, a
 * connection closed mid-answer): its receivers end `unknown`.
 * @example
 * delivery.record(id, answerLost('no answer within 10000 ms'));
 * @throws {YunxinError} code `invalid` for a reason that is not a string.
 */
export declare function answerLost(reason: string): AnswerLostOutcome;

/**
 * One report in which every receiver of every part appears exactly once.
 * @example
 * const report = mergeReport(requests.map((request, i) => ({ ...request, outcome: outcomes[i] })));
 * @throws {YunxinError} parts that are not `{ receiverIds, outcome? }`.
 */
export declare function mergeReport(parts: readonly ReportPart[]): Report;

/**
 * Sends a notification to any number of receivers and resolves to the per-receiver
 * report: a {@link Delivery} driven over `fetch`, so every retry rule is the core's.
 * Upstream failures are in the report, never a rejection.
 * @example
 * const report = await send(
 *   { appKey: process.env.YUNXIN_APP_KEY, appSecret: process.env.YUNXIN_APP_SECRET },
 *   { sender_id: 'ops-bot', receiver_ids: ['alice', 'bob'], content: 'deploy finished' },
 *   { baseUrl: 'https://open-sg.yunxinapi.com', eventId: 'deploy-42' },
 * );
 * console.log(report.delivered, report.failed, report.unknown);
 * @throws {YunxinError} (as a rejection) invalid input, an unknown option name (code
 * `invalid`, e.g. `baseURL` or `timeout`), a runtime without `fetch` or randomness
 * (code `unsupported`); or whatever `onProgress` threw.
 */
export declare function send(
  credentials: Credentials,
  notification: NotificationInput,
  options?: SendOptions,
): Promise<Report>;

/**
 * Checks a callback Yunxin POSTed to the app server (抄送): AppKey, MD5 of the raw body,
 * CheckSum, and CurTime within the tolerance, then returns the body parsed as JSON.
 * Give it the raw body (bytes or text as received), not a re-serialised object.
 * @example
 * // Express: app.post('/yunxin/callback', express.raw({ type: '*' + '/*' }), handler)
 * const event = verifyYunxinCallback(credentials, req.headers, req.body);
 * console.log(event.eventType);
 * @throws {YunxinError} code `callback` when it is not genuine (the message says which
 * check failed); code `json` when a genuine body is not JSON.
 */
export declare function verifyYunxinCallback<Event = YunxinCallbackEvent>(
  credentials: Credentials,
  headers: CallbackHeaders,
  body: CallbackBody,
  options?: VerifyCallbackOptions,
): Event;

/**
 * The headers Yunxin would send with a callback of this raw body: for testing a
 * handler that calls {@link verifyYunxinCallback}.
 * @example
 * const body = JSON.stringify({ eventType: '1', fromAccount: 'alice' });
 * await fetch('http://127.0.0.1:3000/yunxin/callback', { method: 'POST', headers: signYunxinCallback(credentials, body), body });
 * @throws {YunxinError} invalid credentials, body or `now`.
 */
export declare function signYunxinCallback(
  credentials: Credentials,
  body: CallbackBody,
  options?: SignCallbackOptions,
): SignedCallbackHeaders;
