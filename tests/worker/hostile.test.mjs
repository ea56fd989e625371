// Hostile and careless clients against the relay in workerd: bodies that are
// too large or never arrive, ids that are empty, huge or odd, a re-used id
// with another body, and an enqueue that fails after the event was recorded.
// Each case was a reproduction of a defect; each asserts what a client sees
// and what reaches the emulator.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { startEmulator } from '../../emulator/index.mjs';
import { webhookHeaders } from '../../scripts/lib/webhook.mjs';
import { APP_KEY, APP_SECRET, WEBHOOK_SECRET, eventStatus, eventually, notification, postEvent, rawRequest, startRelay } from './harness.mjs';

const TOKEN = 'hostile-status-token';
const MiB = 1024 * 1024;

let emu;
let relay;
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    STATUS_TOKEN: TOKEN,
    BODY_DEADLINE_MS: '1000',
    RETRY_SCHEDULE_SECS: '1,1,1',
    YUNXIN_RATE_PER_MINUTE: '6000',
  });
});
after(async () => {
  await relay?.close();
  await emu?.close();
});
beforeEach(() => emu.reset());

/** Resident memory of this test's workerd processes, in bytes. */
function workerdRss() {
  const pids = execFileSync('ps', ['-eo', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, ppid, comm]) => Number(ppid) === process.pid && comm === 'workerd')
    .map(([pid]) => pid);
  assert.ok(pids.length > 0, 'found the workerd of this test');
  return pids.reduce((sum, pid) => {
    const kb = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1];
    return sum + Number(kb) * 1024;
  }, 0);
}

/** A signed POST whose Content-Length says `contentLength`, over a plain socket. */
function postLying(body, contentLength, options = {}) {
  const headers = { 'Content-Type': 'application/json', ...webhookHeaders(body, { secret: WEBHOOK_SECRET }), 'Content-Length': contentLength };
  return rawRequest(`${relay.url}/v1/notifications`, { headers, body, ...options });
}

describe('bodies are bounded before they are trusted', () => {
  /**
   * POSTs `total` bytes as a chunked body over a raw socket, until the relay
   * answers; resolves to the answer's status and JSON, and what was sent. Raw,
   * because a client library may report the relay closing the connection
   * after its early answer (EPIPE) instead of the answer itself.
   */
  function chunkedPost(total) {
    const { hostname, port } = new URL(relay.url);
    const head = [
      'POST /v1/notifications HTTP/1.1',
      'Host: 127.0.0.1',
      'Content-Type: application/json',
      // Well-formed headers with a signature that cannot match: the body is
      // read (bounded) before the signature over it is checked.
      ...Object.entries(webhookHeaders('', { secret: WEBHOOK_SECRET })).map(([k, v]) => `${k}: ${v}`),
      'Transfer-Encoding: chunked',
      'Connection: close',
    ];
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    return new Promise((resolve, reject) => {
      let sent = 0;
      let answer = '';
      let answered = false;
      const socket = connect({ host: hostname, port: Number(port) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer after ${sent} bytes`));
      }, 20_000);
      const pump = () => {
        while (!answered && sent < total) {
          sent += chunk.length;
          if (!socket.write(frame)) return socket.once('drain', pump);
        }
        if (!answered) socket.write('0\r\n\r\n');
      };
      socket.on('connect', () => {
        socket.write(`${head.join('\r\n')}\r\n\r\n`);
        pump();
      });
      socket.on('data', (data) => {
        answer += data;
        const end = answer.indexOf('\r\n\r\n');
        const status = answer.match(/^HTTP\/1\.1 (\d{3})/);
        const json = end >= 0 ? answer.slice(end + 4).match(/\{.*\}/s) : null;
        if (status && json) {
          answered = true;
          clearTimeout(timer);
          socket.destroy();
          resolve({ status: Number(status[1]), json: JSON.parse(json[0]), sent });
        }
      });
      // Writing after the relay answered and closed is expected.
      socket.on('error', (error) => {
        if (!answered && !['EPIPE', 'ECONNRESET'].includes(error.code)) reject(error);
      });
    });
  }

  test('256 MiB chunked, unauthenticated: 413 early, and workerd keeps its memory', async () => {
    await chunkedPost(2 * MiB); // the isolate's first requests allocate what it keeps anyway
    const before = workerdRss();
    const { status, json, sent } = await chunkedPost(256 * MiB);
    assert.equal(status, 413);
    assert.deepEqual([json.error.code, json.error.limit], ['payload_too_large', MiB]);
    assert.ok(sent < 64 * MiB, `the relay stopped reading early (${sent / MiB} MiB sent)`);
    const grown = workerdRss() - before;
    assert.ok(grown < 8 * MiB, `workerd grew by ${(grown / MiB).toFixed(1)} MiB`);
  });

  test('Content-Length: 2^32 with a 2-byte body: 413 within a second, unread', async () => {
    const answer = await postLying('{}', 2 ** 32);
    assert.equal(answer.status, 413);
    assert.ok(answer.ms < 1000, `${answer.ms} ms`);
  });

  test('Content-Length: 10^12: 413 at once', async () => {
    const answer = await postLying('{}', 10 ** 12);
    assert.equal(answer.status, 413);
  });

  test('a body that never arrives: 408 after BODY_DEADLINE_MS', async () => {
    const answer = await postLying('{}', 100, { timeoutMs: 5000 });
    assert.equal(answer.status, 408);
    assert.ok(answer.ms >= 900 && answer.ms < 4000, `${answer.ms} ms`);
    assert.equal(emu.requests().length, 0);
  });
});

describe('webhook-id', () => {
  const refused = [
    ['empty', ''],
    ['257 characters', 'x'.repeat(257)],
    ['a space', 'evt 1'],
    ['a dot segment', '..'],
  ];
  for (const [name, id] of refused) {
    test(`${name}: 400 naming the header, nothing forwarded`, async () => {
      const result = await postEvent(relay.url, notification(1), { id });
      assert.equal(result.status, 400, result.text);
      assert.deepEqual([result.json.error.code, result.json.error.field], ['bad_header', 'webhook-id']);
      assert.equal(emu.requests().length, 0);
    });
  }

  for (const id of ['evt/../x', 'evt?a=1#frag', 'evt%41~!*', "evt:@$&'()+,;="]) {
    test(`${JSON.stringify(id)}: accepted, and its status_url resolves to it`, async () => {
      const result = await postEvent(relay.url, notification(2), { id, wait: false });
      assert.equal(result.status, 202, result.text);
      assert.equal(result.json.event_id, id);
      const status = await eventually(
        async () => {
          const response = await fetch(new URL(result.json.status_url, relay.url), {
            headers: { authorization: `bearer ${TOKEN}` }, // the scheme is case-insensitive
          });
          const json = await response.json();
          return response.status === 200 && json.state === 'delivered' ? json : null;
        },
        { what: `the status of ${id}` },
      );
      assert.equal(status.event_id, id);
    });
  }

  test('the same id with another body: 409 naming the event, the new body not sent', async () => {
    const id = `evt_conflict_${Date.now()}`;
    const first = await postEvent(relay.url, notification(1), { id, wait: false });
    assert.equal(first.status, 202);
    const again = await postEvent(relay.url, notification(1), { id, wait: false });
    assert.equal(again.status, 200, 'the same body is a re-delivery');
    const other = await postEvent(relay.url, notification(1, { content: 'something else' }), { id, wait: false });
    assert.equal(other.status, 409, other.text);
    assert.equal(other.json.error.code, 'conflict');
    assert.match(other.json.error.message, new RegExp(id));
    await eventually(async () => (await eventStatus(relay.url, id, { token: TOKEN })).json.state === 'delivered');
    assert.deepEqual(
      emu.deliveries().map((d) => d.content),
      ['deploy finished'],
    );
  });
});

describe('the wait preference', () => {
  test('Prefer: wait=10 delivers before answering; ?wait=false queues; ?wait=maybe is refused', async () => {
    const waited = await postEvent(relay.url, notification(1), { headers: { prefer: 'wait=10' } });
    assert.equal(waited.status, 200, waited.text);
    assert.deepEqual(waited.json.delivered, ['user0']);
    const body = JSON.stringify(notification(1));
    for (const [query, status] of [
      ['wait=false', 202],
      ['wait=maybe', 400],
    ]) {
      const headers = { 'content-type': 'application/json', ...webhookHeaders(body, { secret: WEBHOOK_SECRET }) };
      const response = await fetch(`${relay.url}/v1/notifications?${query}`, { method: 'POST', headers, body });
      assert.equal(response.status, status, query);
    }
  });
});

test('an enqueue that fails after the event was recorded: still delivered, exactly once', async (t) => {
  const broken = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    STATUS_TOKEN: TOKEN,
    TEST_FAIL_ENQUEUE: '1',
    WATCHDOG_SECS: '1',
    RETRY_SCHEDULE_SECS: '1,1,1',
    YUNXIN_RATE_PER_MINUTE: '6000',
  });
  t.after(() => broken.close());
  const event = notification(1200, { prefix: 'lost-' });
  const result = await postEvent(broken.url, event, { wait: false });
  assert.equal(result.status, 202, result.text);
  const again = await postEvent(broken.url, event, { wait: false, id: result.id });
  assert.equal(again.status, 200, 'a re-delivery answers the status');
  const status = await eventually(
    async () => {
      const { json } = await eventStatus(broken.url, result.id, { token: TOKEN });
      return json.state === 'delivered' ? json : null;
    },
    { ms: 30_000, what: 'the watchdog to deliver the event' },
  );
  assert.equal(status.delivered.length, 1200);
  const counts = Object.entries(emu.deliveryCounts()).filter(([id]) => id.startsWith('lost-'));
  assert.equal(counts.length, 1200);
  assert.ok(counts.every(([, n]) => n === 1));
});

describe('the synchronous path is bounded and idempotent', () => {
  test('a captured ?wait=1 request replayed 5 times sends nothing more', async () => {
    const body = JSON.stringify(notification(1500, { prefix: 'replay-' }));
    const headers = { 'content-type': 'application/json', ...webhookHeaders(body, { secret: WEBHOOK_SECRET }) };
    const send = () => fetch(`${relay.url}/v1/notifications?wait=1`, { method: 'POST', headers, body });
    const first = await send();
    assert.equal(first.status, 200, await first.text());
    const calls = emu.requests().length;
    assert.equal(calls, 3);
    for (let i = 0; i < 5; i++) {
      const again = await send();
      assert.equal(again.status, 200);
      assert.equal((await again.json()).state, 'delivered');
    }
    assert.equal(emu.requests().length, calls, 'no upstream call for a replay');
  });

  test('10,000 receivers: at most SYNC_MAX_CALLS (10) calls in the request, the queue does the rest', async () => {
    const result = await postEvent(relay.url, notification(10_000, { prefix: 'big-' }));
    assert.equal(result.status, 202, result.text);
    assert.equal(result.json.requests, 20);
    assert.equal(result.json.delivered.length, 5000);
    assert.equal(result.json.pending.length, 5000);
    assert.ok(Number(result.headers.get('retry-after')) >= 1);
    const settled = await eventually(
      async () => {
        const { json } = await eventStatus(relay.url, result.id, { token: TOKEN });
        return json.state === 'delivered' ? json : null;
      },
      { what: 'the queue to deliver the rest' },
    );
    assert.equal(settled.delivered.length, 10_000);
    const counts = Object.entries(emu.deliveryCounts()).filter(([id]) => id.startsWith('big-'));
    assert.equal(counts.length, 10_000);
    assert.ok(counts.every(([, n]) => n === 1));
  });

  test('a hung upstream: the answer comes by SYNC_DEADLINE_MS, the rest pending, then delivered once', async (t) => {
    const bounded = await startRelay({
      YUNXIN_BASE_URL: emu.url,
      STATUS_TOKEN: TOKEN,
      SYNC_DEADLINE_MS: '3000',
      UPSTREAM_TIMEOUT_MS: '10000',
      RETRY_SCHEDULE_SECS: '8',
      YUNXIN_RATE_PER_MINUTE: '6000',
    });
    t.after(() => bounded.close());
    // Slower than the deadline; done upstream before the queue's retry
    // (a second or more after the hand-off), which Yunxin then de-duplicates.
    emu.injectFaults({ kind: 'slow', delayMs: 3500, count: 1 });
    const started = Date.now();
    const result = await postEvent(bounded.url, notification(3, { prefix: 'hung-' }));
    const took = Date.now() - started;
    assert.equal(result.status, 202, result.text);
    assert.ok(took < 3000 + 1500, `answered after ${took} ms`);
    assert.equal(result.json.pending.length, 3);
    assert.match(result.json.pending[0].last_error, /answer lost: no answer within \d+ ms/);
    await eventually(
      async () => (await eventStatus(bounded.url, result.id, { token: TOKEN })).json.state === 'delivered',
      { ms: 30_000, what: 'the queue to finish the hung call' },
    );
    // Let the slow first attempt finish upstream before counting.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 5000 - Date.now())));
    const counts = Object.entries(emu.deliveryCounts()).filter(([id]) => id.startsWith('hung-'));
    assert.deepEqual(counts.map(([, n]) => n), [1, 1, 1]);
  });
});

describe('content and receivers reach Yunxin as sent, or not at all', () => {
  const refused = [
    ['content: null', { sender_id: 'bot', receiver_ids: ['u1'], content: null }, 'missing', 'content'],
    ['a top-level array', ['bot', ['u1'], 'hi'], 'invalid_schema', '.'],
    ['a zero-width space in a receiver id', { sender_id: 'bot', receiver_ids: ['u1', 'u\u200B1'], content: 'x' }, 'invalid', 'receiver_ids[1]'],
    ['a right-to-left override', { sender_id: 'bot', receiver_ids: ['\u202Eu1'], content: 'x' }, 'invalid', 'receiver_ids[0]'],
    ['a byte-order mark', { sender_id: 'bot', receiver_ids: ['\uFEFFu1'], content: 'x' }, 'invalid', 'receiver_ids[0]'],
    ['a wrong type deep inside', { sender_id: 'bot', receiver_ids: ['u1'], content: 'x', push_config: { push_enabled: 'yes' } }, 'invalid_schema', 'push_config.push_enabled'],
  ];
  for (const [name, body, code, field] of refused) {
    test(`${name}: 422 naming ${field}, nothing sent`, async () => {
      const result = await postEvent(relay.url, body);
      assert.equal(result.status, 422, result.text);
      assert.deepEqual([result.json.error.code, result.json.error.field], [code, field]);
      assert.equal(emu.requests().length, 0);
    });
  }

  test('numbers in object content arrive exactly as sent', async () => {
    const content = '{"big":123456789012345678901234567890,"e":1E2,"neg":-0,"f":0.1}';
    const body = `{"sender_id":"bot","receiver_ids":["exact-1"],"content":${content}}`;
    const result = await postEvent(relay.url, null, { body });
    assert.equal(result.status, 200, result.text);
    assert.equal(emu.deliveries()[0].content, content);
  });

  test('receivers dropped as duplicates are named in the report', async () => {
    const ids = ['dup-a', 'DUP-A', 'dup-b', 'dup-a', 'Dup-B'];
    const result = await postEvent(relay.url, { sender_id: 'bot', receiver_ids: ids, content: 'x' });
    assert.equal(result.status, 200, result.text);
    assert.deepEqual(result.json.delivered, ['dup-a', 'dup-b']);
    assert.deepEqual(
      result.json.not_attempted.map((n) => [n.account_id, n.reason]),
      [
        ['DUP-A', 'duplicate of dup-a'],
        ['dup-a', 'duplicate of dup-a'],
        ['Dup-B', 'duplicate of dup-b'],
      ],
    );
    assert.equal(emu.deliveries().length, 2);
  });
});
