// A runtime whose random source fails (no `crypto`, or a getRandomValues that throws, as
// in a Cloudflare Worker's global scope): what needs randomness (nonces, random trace
// ids) throws a YunxinError with code 'unsupported', what does not (validation, fixed
// nonces) works, and the WebAssembly instance never traps. Run in a child process, as it
// replaces the process's `crypto`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { TEST_DIR, linkPackage } from '../test-support/package.mjs';

const run = promisify(execFile);

const SCRIPT = `
const { Delivery, YunxinError, buildBatchRequests, checksum, send, signHeaders, validateNotification } = await import('yunxin-edge');
const credentials = { appKey: 'k', appSecret: 's' };
const notification = { sender_id: 'ops', receiver_ids: ['a', 'b'], content: 'x' };
const real = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
const outcome = async (fn) => {
  try {
    await fn();
    return 'ok';
  } catch (error) {
    return error instanceof YunxinError ? error.code : 'not a YunxinError: ' + error;
  }
};
const runtimes = {
  throwing: { value: { getRandomValues() { throw new Error('Disallowed operation called within global scope'); } } },
  missing: { value: undefined },
};
const results = {};
let fetched = 0;
const fetch = async () => (fetched++, new Response('{"code":200}'));
for (const [name, descriptor] of Object.entries(runtimes)) {
  Object.defineProperty(globalThis, 'crypto', { ...descriptor, configurable: true, writable: true });
  results[name] = {
    signHeaders: await outcome(() => signHeaders(credentials)),
    signHeadersFixed: await outcome(() => signHeaders(credentials, { nonce: 'n', now: 0 })),
    build: await outcome(() => buildBatchRequests(credentials, notification)),
    buildWithEvent: await outcome(() => buildBatchRequests(credentials, notification, { eventId: 'e' })),
    validate: await outcome(() => validateNotification(notification)),
    delivery: await outcome(() => new Delivery(credentials, notification).free()),
    deliveryPoll: await outcome(() => new Delivery(credentials, notification, { eventId: 'e' }).poll()),
    send: await outcome(() => send(credentials, notification, { fetch })),
    sendWithEvent: await outcome(() => send(credentials, notification, { fetch, eventId: 'e' })),
  };
}
// The real source back: the same instance works, and an attempt that could not be
// signed was put back, not lost.
Object.defineProperty(globalThis, 'crypto', real);
const delivery = new Delivery(credentials, notification, { eventId: 'e' });
Object.defineProperty(globalThis, 'crypto', runtimes.throwing);
const failedPoll = await outcome(() => delivery.poll(0));
Object.defineProperty(globalThis, 'crypto', real);
const retried = delivery.poll(0);
results.after = {
  checksum: checksum('secret', 'abc', '1443592222'),
  failedPoll,
  retried: [retried.action, retried.id, retried.request.receiverIds.join()],
  send: JSON.stringify(await send(credentials, notification, { fetch })),
  fetched,
};
console.log(JSON.stringify(results));
`;

test('a failing random source is a YunxinError with code unsupported, never a trap', async () => {
  linkPackage();
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: TEST_DIR });
  const results = JSON.parse(stdout);
  for (const runtime of ['throwing', 'missing']) {
    assert.deepEqual(
      results[runtime],
      {
        signHeaders: 'unsupported',
        signHeadersFixed: 'ok',
        build: 'unsupported',
        buildWithEvent: 'unsupported',
        validate: 'ok',
        delivery: 'unsupported',
        deliveryPoll: 'unsupported',
        send: 'unsupported',
        sendWithEvent: 'unsupported',
      },
      runtime,
    );
  }
  assert.deepEqual(results.after, {
    checksum: '6461e65304e590d2268093aa1d290482274995b9',
    failedPoll: 'unsupported',
    // The put-back attempt's id (0/1) is never reused: the resend is 0/2.
    retried: ['send', '0/2', 'a,b'],
    send: '{"delivered":["a","b"],"failed":[],"unknown":[],"not_attempted":[]}',
    fetched: 1,
  });
});
