// Replay: `POST /v1/events/{id}/retry` sends again the receivers that ended
// failed, and never one that was delivered (the emulator's record says so),
// even when two replays race.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../emulator/index.mjs';
import { webhookHeaders } from '../../scripts/lib/webhook.mjs';
import { APP_KEY, APP_SECRET, WEBHOOK_SECRET, eventStatus, eventually, notification, postEvent, request, startRelay } from './harness.mjs';

const TOKEN = 'replay-status-token';

let emu;
let relay;
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    STATUS_TOKEN: TOKEN,
    RETRY_SCHEDULE_SECS: '1', // two attempts per call, then the call ends
    YUNXIN_RATE_PER_MINUTE: '6000',
  });
});
after(async () => {
  await relay?.close();
  await emu?.close();
});
beforeEach(() => emu.reset());

/** POSTs a retry of event `id`, with the bearer token unless `headers` replace it. */
function retry(id, body = '', headers = { authorization: `Bearer ${TOKEN}` }) {
  return request(`${relay.url}/v1/events/${encodeURIComponent(id)}/retry`, { headers: { 'content-type': 'application/json', ...headers }, body });
}

/** Queues an event and waits until the queue has finished it; answers its status. */
async function queuedAndFinished(body) {
  const accepted = await postEvent(relay.url, body, { wait: false });
  assert.equal(accepted.status, 202, accepted.text);
  return { id: accepted.id, status: await finished(accepted.id) };
}

async function finished(id) {
  return eventually(
    async () => {
      const { json } = await eventStatus(relay.url, id, { token: TOKEN });
      return json.state !== 'pending' ? json : null;
    },
    { ms: 30_000, what: `event ${id} finished` },
  );
}

function deliveriesOf(receiver) {
  return emu.deliveries().filter((d) => d.receiverId === receiver).length;
}

describe('replaying failures', () => {
  test('only receivers failed for a retryable reason go again; delivered ones never; `all` adds the permanent failures', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['user3', 'user7'] });
    const body = notification(10);
    body.receiver_ids.push('ghost1'); // unknown to Yunxin: failed for good (102404)
    const { id, status } = await queuedAndFinished(body);
    assert.equal(status.state, 'completed_with_failures');
    const failed = Object.fromEntries(status.failed.map((f) => [f.account_id, f]));
    assert.deepEqual(Object.keys(failed).sort(), ['ghost1', 'user3', 'user7']);
    assert.equal(failed.user3.retryable, true);
    assert.equal(failed.ghost1.retryable, false);
    assert.equal(emu.deliveries().length, 8);

    emu.clearFaults();
    const replayed = await retry(id);
    assert.equal(replayed.status, 202, replayed.text);
    assert.deepEqual(replayed.json, { event_id: id, retried_receivers: 2, requests: [0], status_url: `/v1/events/${id}` });
    const after = await finished(id);
    assert.deepEqual(after.failed.map((f) => f.account_id), ['ghost1']);
    assert.equal(after.delivered.length, 10);
    for (let i = 0; i < 10; i++) assert.equal(deliveriesOf(`user${i}`), 1, `user${i} notified once`);
    const replayCall = emu.requests().at(-1);
    assert.equal(replayCall.receiverCount, 2, 'the replay carried only the two failed receivers');

    const again = await retry(id);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.retried_receivers, 0, 'a permanent failure is left alone');

    const all = await retry(id, '{"all": true}');
    assert.equal(all.status, 202, all.text);
    assert.equal(all.json.retried_receivers, 1);
    const last = await finished(id);
    assert.deepEqual(last.failed.map((f) => [f.account_id, f.error_code]), [['ghost1', 102404]]);
    assert.equal(emu.requests().at(-1).receiverCount, 1);
    assert.equal(emu.deliveries().length, 10, 'nobody notified twice');
  });

  test('two replays at once send each failed receiver once', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102500, prefix: 'race' });
    const { id } = await queuedAndFinished(notification(6, { prefix: 'race' }));
    assert.equal(emu.deliveries().length, 0);
    emu.clearFaults();
    const answers = await Promise.all([retry(id), retry(id), retry(id, '{"all":true}')]);
    const sent = answers.map((a) => a.json.retried_receivers);
    assert.deepEqual(sent.sort(), [0, 0, 6], JSON.stringify(answers.map((a) => a.json)));
    const after = await finished(id);
    assert.equal(after.state, 'delivered');
    for (let i = 0; i < 6; i++) assert.equal(deliveriesOf(`race${i}`), 1);
  });

  test('`{"unknown": true}` sends unknown receivers again under their original trace id: Yunxin takes them once', async () => {
    // The first attempt is processed and its answer lost; the second meets a 502.
    emu.injectFaults([{ kind: 'drop-after', count: 1 }, { kind: 'http502' }]);
    const { id, status } = await queuedAndFinished(notification(3, { prefix: 'lost' }));
    assert.deepEqual(status.failed, []);
    assert.deepEqual(status.unknown.map((u) => u.account_id).sort(), ['lost0', 'lost1', 'lost2']);
    const [first, second] = emu.requests();
    assert.equal(second.traceId, first.traceId);
    assert.equal(emu.deliveries().length, 3, 'the lost answer was delivered');

    emu.clearFaults();
    const plain = await retry(id, '{"all": true}');
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.json.retried_receivers, 0, 'unknown receivers are never sent under a new trace id');

    const replayed = await retry(id, '{"unknown": true}');
    assert.equal(replayed.status, 202, replayed.text);
    assert.deepEqual(replayed.json, { event_id: id, retried_receivers: 3, requests: [0], status_url: `/v1/events/${id}` });
    const after = await finished(id);
    assert.equal(after.state, 'delivered', JSON.stringify(after));
    assert.deepEqual(after.unknown, []);
    const last = emu.requests().at(-1);
    assert.equal(last.traceId, first.traceId, 'the original trace id');
    assert.equal(last.replayed, true, 'answered from the trace-id replay');
    assert.equal(last.traceIdConflict, false, 'the same body as the original');
    for (let i = 0; i < 3; i++) assert.equal(deliveriesOf(`lost${i}`), 1, `lost${i} notified once`);
  });

  test('a dead-lettered call is re-driven, and leaves the dead-letter list', async () => {
    emu.injectFaults({ kind: 'http502' });
    const { id } = await queuedAndFinished(notification(3, { prefix: 'dl' }));
    const dead = await eventually(
      async () => {
        const { json } = await eventStatus(relay.url, id, { token: TOKEN });
        return json.dead_lettered_requests.length ? json : null;
      },
      { ms: 30_000, what: 'the call dead-lettered' },
    );
    assert.deepEqual(dead.dead_lettered_requests, [0]);
    assert.ok(dead.failed.every((f) => f.retryable), JSON.stringify(dead.failed));
    emu.clearFaults();
    const replayed = await retry(id);
    assert.equal(replayed.status, 202, replayed.text);
    assert.equal(replayed.json.retried_receivers, 3);
    const after = await finished(id);
    assert.equal(after.state, 'delivered');
    assert.deepEqual(after.dead_lettered_requests, []);
    assert.equal(emu.deliveries().length, 3);
  });
});

describe('who may replay, and how it is asked', () => {
  let id;
  before(async () => {
    const event = await postEvent(relay.url, notification(1, { prefix: 'auth' }));
    assert.equal(event.status, 200, event.text);
    id = event.id;
  });

  test('no credentials, a wrong bearer or a bad signature → 401, nothing sent', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-the-token' }, webhookHeaders('{"all":false}', { secret: WEBHOOK_SECRET })]) {
      const answer = await retry(id, '{"all":true}', headers);
      assert.equal(answer.status, 401, answer.text);
      assert.equal(answer.json.error.code, 'unauthorized');
    }
    assert.equal(emu.requests().length, 0);
  });

  test('a Standard Webhooks signature over the body is refused: it is not tied to the path (issue 19)', async () => {
    const body = '{"all": true}';
    const answer = await retry(id, body, webhookHeaders(body, { secret: WEBHOOK_SECRET }));
    assert.equal(answer.status, 401, answer.text);
    assert.equal(emu.requests().length, 0);
  });

  test('an unknown event → 404; an unknown field → 400 naming it; GET → 405', async () => {
    const unknown = await retry('no-such-event');
    assert.equal(unknown.status, 404, unknown.text);
    const bad = await retry(id, '{"everything": true}');
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, 'bad_body');
    assert.match(bad.json.error.message, /unknown field `everything`/);
    const get = await request(`${relay.url}/v1/events/${id}/retry`, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(emu.requests().length, 0);
  });
});
