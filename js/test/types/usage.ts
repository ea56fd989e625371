// Type-checked against the built package's declarations (types.test.mjs runs
// `tsc --noEmit -p js/test/types`); never executed. Every public type is used, and the
// lines marked as expected errors at the end prove that the types reject mistakes,
// i.e. are not `any`.
import {
  BATCH_PATH,
  DEFAULT_BASE_URL,
  Delivery,
  MAX_RECEIVERS_PER_REQUEST,
  YunxinError,
  answerLost,
  buildBatchRequests,
  checksum,
  classifyResponse,
  mergeReport,
  parseBatchResponse,
  resignRequest,
  send,
  signHeaders,
  transportFailure,
  validateNotification,
  verifyYunxinCallback,
  type AnswerLostOutcome,
  type BatchNotification,
  type BatchRequest,
  type BatchResponse,
  type Credentials,
  type DeliveryAction,
  type DeliveryOptions,
  type Failure,
  type FetchFunction,
  type Outcome,
  type Recorded,
  type Report,
  type RetryVerdict,
  type SendOptions,
  type SignedHeaders,
  type TransportOutcome,
  type Unknown,
  type YunxinErrorCode,
} from 'yunxin-edge';

const credentials: Credentials = { appKey: 'app-key', appSecret: 'app-secret' };

// Every field of the reference.
const notification: BatchNotification = {
  sender_id: 'ops-bot',
  receiver_ids: ['alice', 'bob'],
  content: { deploy: 'finished', attempt: 1, tags: ['a', null, true] },
  sound: 'ding',
  push_config: {
    push_enabled: true,
    push_nick_enabled: false,
    push_content: 'Deploy finished',
    push_payload: '{"k":1}',
    push_forcepush_enable: false,
    push_forcepush_all: false,
    push_forcepush_ids: ['alice'],
    push_forcepush_content: 'Now',
  },
  route_config: { route_enabled: true, route_environment: 'prod' },
  notification_config: {
    offline_enabled: true,
    unread_enabled: true,
    notification_enabled: true,
    notification_extension: 'ext',
    high_priority: 0,
    high_priority_policy: 0,
  },
};
const textual: BatchNotification = { sender_id: 'a', receiver_ids: ['b'] as const, content: 'plain text' };

const requests: BatchRequest[] = buildBatchRequests(credentials, notification, {
  baseUrl: DEFAULT_BASE_URL,
  eventId: 'evt-1',
  maxReceivers: 10 * MAX_RECEIVERS_PER_REQUEST,
  now: new Date(),
});
const first = requests[0];
if (first) {
  const pending: Promise<Response> = fetch(first.url, first); // a request is a RequestInit
  void pending;
  const again: BatchRequest = resignRequest(credentials, first, { now: Date.now(), nonce: 'n' });
  const trace: string = again.headers['X-custom-traceid'];
  void trace;
}
const path: string = BATCH_PATH;
const sum: string = checksum('secret', 'abc', 1443592222);
const headers: SignedHeaders = signHeaders(credentials, { traceId: 't', nonce: 'n', now: 0 });
const maybeTrace: string | undefined = headers['X-custom-traceid'];
const { receiverIds, requestCount } = validateNotification(textual, { maxReceivers: 5 });

const response: BatchResponse = parseBatchResponse('{"code":200}');
const firstFailedCode: number | undefined = response.data.failed_list[0]?.error_code;
const outcome: Outcome = classifyResponse(200, new Uint8Array());
switch (outcome.kind) {
  case 'delivered':
    outcome.success satisfies string[];
    break;
  case 'partial_failure':
    outcome.failed satisfies { account_id: string; error_code: number; error_msg: string }[];
    break;
  case 'rejected':
    outcome.code satisfies number;
    break;
  case 'transport':
    outcome.http_status satisfies number | null;
    break;
  case 'answer_lost':
    outcome.reason satisfies string;
    break;
}
const verdict: RetryVerdict = outcome.retry;
const delay: number = verdict.verdict === 'retry' ? verdict.min_delay_secs : 0;
const timeout: TransportOutcome = transportFailure('timed out', null);
const report: Report = mergeReport([
  ...requests.map((request) => ({ ...request, outcome })),
  { receiverIds: ['carol'], outcome: timeout },
  { receiverIds: ['dave'], outcome: null },
  { receiverIds: ['erin'] },
]);
const failures: Failure[] = report.failed;
const unknowns: Unknown[] = report.unknown;
const wait: number | undefined = report.retry_after_secs;
const lost: AnswerLostOutcome = answerLost('no answer within 10000 ms');

// The core's retry rules over a transport of one's own.
async function deliverWith(transport: (request: BatchRequest) => Promise<Outcome>): Promise<Report> {
  const options: DeliveryOptions = { eventId: 'evt-3', retries: 3, retryDelayMs: 100, maxWaitMs: 5_000 };
  const delivery = new Delivery(credentials, notification, options);
  try {
    for (;;) {
      const action: DeliveryAction = delivery.poll(Date.now());
      if (action.action === 'done') return action.report;
      if (action.action === 'wait') {
        const until = action.untilMs ?? Date.now() + 100;
        await new Promise((resolve) => setTimeout(resolve, until - Date.now()));
        continue;
      }
      const recorded: Recorded = delivery.record(action.id, await transport(action.request), null, Date.now());
      if (recorded.recorded === 'retry') recorded.at_ms satisfies number;
    }
  } finally {
    delivery.free();
  }
}

async function sendAll(): Promise<Report> {
  const viaGlobalFetch: FetchFunction = fetch; // the DOM's fetch fits
  const options: SendOptions = {
    baseUrl: 'http://127.0.0.1:9100',
    eventId: 'evt-2',
    maxReceivers: 1000,
    fetch: viaGlobalFetch,
    retries: 2,
    retryDelayMs: 100,
    maxWaitMs: 1_000,
    timeoutMs: 10_000,
    concurrency: 6,
    signal: AbortSignal.timeout(30_000),
  };
  return send(credentials, notification, options);
}

// With exactOptionalPropertyTypes, an unset setting may still be passed as undefined
// (the README passes `process.env.YUNXIN_BASE_URL`).
declare const fromEnvironment: string | undefined;
void send(credentials, { ...textual, sound: undefined }, { baseUrl: fromEnvironment, eventId: undefined });

try {
  verifyYunxinCallback(credentials, new Headers(), new Uint8Array(), { now: new Date(), toleranceMs: 60_000 });
  verifyYunxinCallback(credentials, { appkey: 'k', md5: ['x'], checksum: undefined }, '{}');
  verifyYunxinCallback(credentials, { get: (name: string) => (name === 'AppKey' ? 'k' : null) }, new ArrayBuffer(0));
} catch (error) {
  if (error instanceof YunxinError) {
    const code: YunxinErrorCode = error.code;
    const field: string | undefined = error.field;
    const limit: number | undefined = error.limit;
    const name: 'YunxinError' = error.name;
    void [code, field, limit, name];
  }
}
const made = new YunxinError('custom', { code: 'invalid', field: 'x' });

// The declarations reject mistakes.
// @ts-expect-error a misspelt field is not a BatchNotification
const typo: BatchNotification = { sender_id: 'a', receiver_ids: ['b'], content: 'x', recevier_ids: ['b'] };
// @ts-expect-error content is text or a JSON object/array, not a number
buildBatchRequests(credentials, { sender_id: 'a', receiver_ids: ['b'], content: 5 });
// @ts-expect-error receiver_ids is required
validateNotification({ sender_id: 'a', content: 'x' });
// @ts-expect-error retries is a number
void send(credentials, notification, { retries: '2' });
// @ts-expect-error options are spelt as documented (baseUrl)
void send(credentials, notification, { baseURL: 'https://open-sg.yunxinapi.com' });
// @ts-expect-error send() has no `timeout`: it is timeoutMs
void send(credentials, notification, { timeout: 1000 });
// @ts-expect-error a Delivery does no I/O: no timeout of its own
void new Delivery(credentials, notification, { timeoutMs: 1000 });
// @ts-expect-error record() takes an outcome
new Delivery(credentials, notification).record('0/1', 'delivered');
// @ts-expect-error credentials need the secret
signHeaders({ appKey: 'k' });
// @ts-expect-error there is no such outcome kind
const kind: Outcome['kind'] = 'maybe';
// @ts-expect-error the report's lists are arrays of ids
const count: number = report.delivered;
// @ts-expect-error error codes are a closed set
const code: YunxinErrorCode = 'oops';

void [textual, path, sum, maybeTrace, receiverIds, requestCount, firstFailedCode, delay, failures, wait, sendAll, made];
void [unknowns, lost, deliverWith];
void [typo, kind, count, code];
