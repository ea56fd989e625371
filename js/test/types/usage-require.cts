// The declarations as a CommonJS TypeScript file sees them (`require` condition:
// index.d.cts). Type-checked only, never executed.
import yunxin = require('yunxin-edge');

const credentials: yunxin.Credentials = { appKey: 'k', appSecret: 's' };
const requests: yunxin.BatchRequest[] = yunxin.buildBatchRequests(credentials, {
  sender_id: 'a',
  receiver_ids: ['b'],
  content: 'x',
});
const pending: Promise<yunxin.Report> = yunxin.send(credentials, { sender_id: 'a', receiver_ids: ['b'], content: 'x' });
const isError = (error: unknown): error is yunxin.YunxinError => error instanceof yunxin.YunxinError;
const unknowns: Promise<yunxin.Unknown[]> = pending.then((report) => report.unknown);
const delivery = new yunxin.Delivery(credentials, { sender_id: 'a', receiver_ids: ['b'], content: 'x' }, { retries: 1 });
const next: yunxin.DeliveryAction = delivery.poll();
delivery.free();
// @ts-expect-error the notification is typed here too
yunxin.validateNotification({ sender: 'a' });

export = { requests, pending, isError, unknowns, next };
