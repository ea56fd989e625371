// The declarations with `lib: ["es2022"]` only: no DOM lib, no @types/node (no fetch,
// no AbortSignal, no Headers, no process). Type-checked only, never executed.
import {
  Delivery,
  send,
  signYunxinCallback,
  verifyYunxinCallback,
  type AbortSignalLike,
  type DeliveryProgress,
  type FetchFunction,
  type Report,
  type SendProgress,
  type SignedCallbackHeaders,
  type YunxinCallbackEvent,
} from 'yunxin-edge';
import { buildBatchRequests as inlineBuild } from 'yunxin-edge/inline';

const credentials = { appKey: 'k', appSecret: 's' };
const notification = { sender_id: 'ops', receiver_ids: ['a', 'b'], content: 'hi' };

// A signal from somewhere (a framework, a runtime): only what the package needs.
declare const signal: AbortSignalLike;
declare const myFetch: FetchFunction;
const seen: SendProgress[] = [];
const pending: Promise<Report> = send(credentials, notification, {
  baseUrl: 'http://127.0.0.1:8080',
  signal,
  fetch: myFetch,
  timeoutMs: 1000,
  onProgress: (progress) => {
    seen.push(progress);
    const settled: number = progress.total - progress.pending;
    // The attempt that settled: which call, what became of it, what follows.
    const { call, attempt, traceId, receivers, outcome, recorded } = progress.last;
    const retryAt: number | undefined = recorded.recorded === 'retry' ? recorded.at_ms : undefined;
    const failed: number = outcome.kind === 'partial_failure' ? outcome.failed.length : 0;
    void [settled, call, attempt, traceId.length, receivers, retryAt, failed];
  },
});
// A notification as its JSON text in bytes (a request body, a file).
declare const body: Uint8Array;
const fromBytes: Promise<Report> = send(credentials, body);
const fromBuffer = new Delivery(credentials, new ArrayBuffer(0));
fromBuffer.free();

const headers: SignedCallbackHeaders = signYunxinCallback(credentials, '{"eventType":"1"}', { now: 0 });
const event: YunxinCallbackEvent = verifyYunxinCallback(credentials, headers, new Uint8Array());
const kind: string | undefined = event.eventType;
interface MyEvent {
  eventType: '1';
  fromAccount: string;
}
const mine: MyEvent = verifyYunxinCallback<MyEvent>(credentials, { get: () => null }, new ArrayBuffer(0));

const delivery = new Delivery(credentials, notification);
const counts: DeliveryProgress = delivery.progress();
delivery.free();
const planned: number = inlineBuild(credentials, notification).length;

// @ts-expect-error a misspelt option is a type error too
void send(credentials, notification, { baseURL: 'https://x' });
// @ts-expect-error a notification is an object or bytes, not JSON text in a string
void send(credentials, '{"sender_id":"ops"}');
// @ts-expect-error onProgress is called with counts, not a report
void send(credentials, notification, { onProgress: (progress: Report) => progress });

export { pending, kind, mine, counts, planned, fromBytes };
