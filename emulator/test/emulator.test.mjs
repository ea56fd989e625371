// Tests of the Yunxin emulator itself. Requests are signed here with node:crypto
// directly (not with the emulator's `checksum`), so a bug in one is not mirrored by
// the other. Run: node --test emulator/test/
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { startEmulator, checksum, verifySignedHeaders, validateBatchBody, BATCH_PATH } from '../index.mjs';
import { agent, request } from './http.mjs';

const APP_KEY = 'test-app-key';
const APP_SECRET = 'test-app-secret';
const OTHER_KEY = 'other-app';
const OTHER_SECRET = 'other-秘密';

// --- client-side helpers ----------------------------------------------------------

const sha1hex = (...parts) => createHash('sha1').update(Buffer.concat(parts.map((p) => Buffer.from(p, 'utf8')))).digest('hex');
const nowSec = () => Math.floor(Date.now() / 1000);

function signedHeaders({ appKey = APP_KEY, secret = APP_SECRET, nonce = randomBytes(16).toString('hex'), curTime = String(nowSec()), traceId } = {}) {
  const h = { AppKey: appKey, Nonce: nonce, CurTime: curTime, CheckSum: sha1hex(secret, nonce, curTime) };
  if (traceId !== undefined) h['X-custom-traceid'] = traceId;
  return h;
}


const validBody = (over = {}) => ({ sender_id: 'sender1', receiver_ids: ['Alice', 'bob'], content: '{"type":"ping"}', ...over });

/** A correctly signed batch call. */
function send(emu, body = validBody(), sign = {}, extra = {}) {
  return request(emu.url, { body, headers: { ...signedHeaders(sign), ...(extra.headers ?? {}) }, ...extra.opts });
}

// --- checksum --------------------------------------------------------------------

describe('checksum', { timeout: 30_000 }, () => {
  test('reference test vector', () => {
    assert.equal(checksum('secret', 'abc', '1443592222'), '6461e65304e590d2268093aa1d290482274995b9');
    assert.equal(checksum('secret', 'abc', 1443592222), '6461e65304e590d2268093aa1d290482274995b9');
  });

  test('non-ASCII secret: UTF-8 of the plain concatenation', () => {
    const secret = '密钥🔑é';
    const nonce = 'Nonçe';
    const curTime = '1700000000';
    // Computed with `printf %s '密钥🔑éNonçe1700000000' | sha1sum` (an independent tool).
    assert.equal(checksum(secret, nonce, curTime), '6db748b48b273198831c729f8efb63ee9bedd1d0');
    // And again from separately UTF-8-encoded parts.
    assert.equal(checksum(secret, nonce, curTime), sha1hex(secret, nonce, curTime));
    // A latin1/UTF-16 slip would give something else.
    const latin1 = createHash('sha1').update(Buffer.from(secret + nonce + curTime, 'latin1')).digest('hex');
    assert.notEqual(checksum(secret, nonce, curTime), latin1);
  });
});

// --- verifySignedHeaders (pure) ------------------------------------------------------

describe('verifySignedHeaders', { timeout: 30_000 }, () => {
  const apps = { [APP_KEY]: APP_SECRET, [OTHER_KEY]: OTHER_SECRET };
  const NOW = 1_700_000_000_500; // ms; the current second is 1700000000
  const at = (curTime, extra = {}) => signedHeaders({ curTime: String(curTime), ...extra });
  const lower = (h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

  test('a valid signature passes, header names in any case', () => {
    assert.deepEqual(verifySignedHeaders(at(1_700_000_000), apps, NOW), { ok: true, appKey: APP_KEY });
    assert.deepEqual(verifySignedHeaders(lower(at(1_700_000_000)), apps, NOW), { ok: true, appKey: APP_KEY });
    const other = at(1_700_000_000, { appKey: OTHER_KEY, secret: OTHER_SECRET });
    assert.deepEqual(verifySignedHeaders(other, new Map(Object.entries(apps)), NOW), { ok: true, appKey: OTHER_KEY });
  });

  test('bad checksum → 414 "checksum error"', () => {
    const h = at(1_700_000_000);
    h.CheckSum = h.CheckSum.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    assert.deepEqual(verifySignedHeaders(h, apps, NOW), { ok: false, code: 414, msg: 'checksum error' });
    const wrongSecret = at(1_700_000_000, { secret: 'not-the-secret' });
    assert.equal(verifySignedHeaders(wrongSecret, apps, NOW).msg, 'checksum error');
    const upper = at(1_700_000_000);
    upper.CheckSum = upper.CheckSum.toUpperCase();
    assert.equal(verifySignedHeaders(upper, apps, NOW).ok, false, 'the checksum is lowercase hex');
    const short = at(1_700_000_000);
    short.CheckSum = short.CheckSum.slice(1);
    assert.equal(verifySignedHeaders(short, apps, NOW).msg, 'checksum error');
    const { CheckSum, ...missing } = at(1_700_000_000);
    assert.equal(verifySignedHeaders(missing, apps, NOW).code, 414);
  });

  test('unknown or missing AppKey → 414 naming AppKey, never the secret', () => {
    const r = verifySignedHeaders(at(1_700_000_000, { appKey: 'nope' }), apps, NOW);
    assert.equal(r.ok, false);
    assert.equal(r.code, 414);
    assert.match(r.msg, /AppKey/);
    const { AppKey, ...missing } = at(1_700_000_000);
    const m = verifySignedHeaders(missing, apps, NOW);
    assert.equal(m.code, 414);
    assert.match(m.msg, /AppKey/);
    // "constructor" must not resolve to Object.prototype.constructor
    assert.equal(verifySignedHeaders(at(1_700_000_000, { appKey: 'constructor' }), apps, NOW).ok, false);
  });

  test('Nonce: 128 characters pass, 129 and missing/empty fail', () => {
    assert.equal(verifySignedHeaders(at(1_700_000_000, { nonce: 'n'.repeat(128) }), apps, NOW).ok, true);
    const long = verifySignedHeaders(at(1_700_000_000, { nonce: 'n'.repeat(129) }), apps, NOW);
    assert.equal(long.code, 414);
    assert.match(long.msg, /Nonce/);
    assert.equal(verifySignedHeaders(at(1_700_000_000, { nonce: '' }), apps, NOW).code, 414);
    const { Nonce, ...missing } = at(1_700_000_000);
    assert.match(verifySignedHeaders(missing, apps, NOW).msg, /Nonce/);
  });

  test('CurTime: 300 s old passes, 301 s old and 1 s in the future fail', () => {
    assert.equal(verifySignedHeaders(at(1_700_000_000 - 300), apps, NOW).ok, true);
    const stale = verifySignedHeaders(at(1_700_000_000 - 301), apps, NOW);
    assert.equal(stale.code, 414);
    assert.match(stale.msg, /expired/);
    const future = verifySignedHeaders(at(1_700_000_001), apps, NOW);
    assert.equal(future.code, 414);
    assert.match(future.msg, /future/);
    // The configured skew is honoured.
    assert.equal(verifySignedHeaders(at(1_700_000_000 - 60), apps, NOW, { maxSkewSeconds: 59 }).ok, false);
  });

  test('CurTime in milliseconds is rejected as future', () => {
    const r = verifySignedHeaders(at(NOW), apps, NOW);
    assert.equal(r.code, 414);
    assert.match(r.msg, /future/);
  });

  test('CurTime must be a decimal integer', () => {
    for (const bad of ['1.7e9', '-1', ' 1700000000', '1700000000.0', '0x6553f100', '']) {
      assert.equal(verifySignedHeaders(at(bad), apps, NOW).ok, false, `CurTime ${JSON.stringify(bad)}`);
    }
  });

  test('messages never contain the secret or the expected checksum', () => {
    const h = at(1_700_000_000);
    const expected = h.CheckSum;
    h.CheckSum = '0'.repeat(40);
    const r = verifySignedHeaders(h, apps, NOW);
    assert.ok(!r.msg.includes(APP_SECRET) && !r.msg.includes(expected));
  });
});

// --- the HTTP batch endpoint -------------------------------------------------------

describe('batch endpoint', { timeout: 30_000 }, () => {
  let emu;
  before(async () => {
    emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET, [OTHER_KEY]: OTHER_SECRET } });
  });
  after(() => emu.close(), { timeout: 5000 });
  beforeEach(() => emu.reset());

  test('a valid request is delivered, ids lower-cased', async () => {
    const r = await send(emu, validBody({ sender_id: 'Sender1' }), { traceId: 't-valid' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { code: 200, msg: 'success', data: { success_list: ['alice', 'bob'], failed_list: [] } });
    const d = emu.deliveries();
    assert.equal(d.length, 2);
    assert.deepEqual(d.map(({ at, ...rest }) => rest), [
      { traceId: 't-valid', appKey: APP_KEY, senderId: 'sender1', receiverId: 'alice', content: '{"type":"ping"}' },
      { traceId: 't-valid', appKey: APP_KEY, senderId: 'sender1', receiverId: 'bob', content: '{"type":"ping"}' },
    ]);
    assert.equal(typeof d[0].at, 'number');
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
    const [rec] = emu.requests();
    assert.equal(rec.traceId, 't-valid');
    assert.equal(rec.receiverCount, 2);
    assert.equal(rec.httpStatus, 200);
    assert.equal(rec.code, 200);
    assert.equal(rec.fault, null);
    assert.equal(rec.replayed, false);
    assert.equal(rec.checksumOk, true);
    assert.equal(typeof rec.at, 'number');
  });

  test('a second app key signs with its own secret', async () => {
    const r = await send(emu, validBody(), { appKey: OTHER_KEY, secret: OTHER_SECRET });
    assert.equal(r.json.code, 200);
    assert.equal(emu.deliveries()[0].appKey, OTHER_KEY);
    const bad = await send(emu, validBody(), { appKey: OTHER_KEY, secret: APP_SECRET });
    assert.equal(bad.json.code, 414);
  });

  test('signature failures over HTTP: 414, nothing delivered, recorded', async () => {
    const cases = [
      { sign: { secret: 'wrong' }, msg: /checksum error/ },
      { sign: { appKey: 'unknown-key' }, msg: /AppKey/ },
      { sign: { curTime: String(nowSec() - 400) }, msg: /expired/ },
      { sign: { curTime: String(nowSec() + 60) }, msg: /future/ },
      { sign: { curTime: String(Date.now()) }, msg: /future/ },
      { sign: { nonce: 'x'.repeat(129) }, msg: /Nonce/ },
    ];
    for (const c of cases) {
      const r = await send(emu, validBody(), c.sign);
      assert.equal(r.status, 200);
      assert.equal(r.json.code, 414, JSON.stringify(c.sign));
      assert.match(r.json.msg, c.msg);
      assert.ok(!r.text.includes(APP_SECRET));
    }
    assert.equal(emu.deliveries().length, 0);
    assert.ok(emu.requests().every((q) => q.checksumOk === false && q.code === 414));
  });

  test('the clock is injectable: exactly maxSkewSeconds old passes over HTTP', async () => {
    const fixed = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, now: () => 1_700_000_000_999, maxSkewSeconds: 10 });
    try {
      assert.equal((await send(fixed, validBody(), { curTime: '1699999990' })).json.code, 200);
      assert.equal((await send(fixed, validBody(), { curTime: '1699999989' })).json.code, 414);
      assert.equal((await send(fixed, validBody(), { curTime: '1700000001' })).json.code, 414);
    } finally {
      await fixed.close();
    }
  });

  test('unknown path → HTTP 404, wrong method → HTTP 405', async () => {
    const r404 = await request(emu.url, { path: '/im/v2/custom_notification/single', body: validBody(), headers: signedHeaders() });
    assert.equal(r404.status, 404);
    const r405 = await request(emu.url, { method: 'GET', headers: signedHeaders() });
    assert.equal(r405.status, 405);
    assert.equal(r405.headers.allow, 'POST');
    const put = await request(emu.url, { method: 'PUT', body: validBody(), headers: signedHeaders() });
    assert.equal(put.status, 405);
    assert.equal(emu.deliveries().length, 0);
    assert.deepEqual(emu.requests().map((q) => q.httpStatus), [404, 405, 405]);
  });

  test('body must be JSON (object) with a JSON content type → 414', async () => {
    for (const body of ['not json', '{"sender_id":', '[]', '"str"', '']) {
      const r = await send(emu, body);
      assert.equal(r.status, 200);
      assert.equal(r.json.code, 414, `body ${JSON.stringify(body)}`);
    }
    const form = await send(emu, validBody(), {}, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.json.code, 414);
    assert.match(form.json.msg, /Content-Type/);
    assert.equal(emu.deliveries().length, 0);
  });

  test('body limits: at the limit passes, one past fails with the right code', async () => {
    const id32 = 'a'.repeat(32);
    const pc = (o) => ({ push_config: o });
    const cases = [
      // [name, fields at the limit, fields one past, code one past]
      ['content (CJK)', { content: '中'.repeat(4096) }, { content: '中'.repeat(4097) }, 405],
      ['content (astral)', { content: '😀'.repeat(4096) }, { content: '😀'.repeat(4097) }, 405],
      ['sound', { sound: 's'.repeat(30) }, { sound: 's'.repeat(31) }, 405],
      ['push_content', pc({ push_content: '推'.repeat(500) }), pc({ push_content: '推'.repeat(501) }), 405],
      ['push_payload', pc({ push_payload: 'p'.repeat(2048) }), pc({ push_payload: 'p'.repeat(2049) }), 405],
      ['push_forcepush_content', pc({ push_forcepush_content: 'f'.repeat(500) }), pc({ push_forcepush_content: 'f'.repeat(501) }), 405],
      ['push_forcepush_ids', pc({ push_forcepush_ids: Array.from({ length: 100 }, (_, i) => `u${i}`) }),
        pc({ push_forcepush_ids: Array.from({ length: 101 }, (_, i) => `u${i}`) }), 414],
      ['receiver_ids count', { receiver_ids: Array.from({ length: 500 }, (_, i) => `r${i}`) },
        { receiver_ids: Array.from({ length: 501 }, (_, i) => `r${i}`) }, 414],
      ['receiver id length', { receiver_ids: [id32] }, { receiver_ids: [`${id32}a`] }, 414],
      ['sender id length', { sender_id: id32 }, { sender_id: `${id32}a` }, 414],
    ];
    for (const [name, atLimit, past, code] of cases) {
      const ok = await send(emu, validBody(atLimit));
      assert.equal(ok.json.code, 200, `${name} at the limit: ${ok.json.msg}`);
      const bad = await send(emu, validBody(past));
      assert.equal(bad.json.code, code, `${name} one past`);
      assert.equal(typeof bad.json.msg, 'string');
    }
    // 500 accepted receivers delivered once each.
    assert.equal(emu.deliveryCounts().r499, 1);
  });

  test('required fields and types → 414', async () => {
    const { sender_id, ...noSender } = validBody();
    const { receiver_ids, ...noReceivers } = validBody();
    const { content, ...noContent } = validBody();
    const bodies = [
      noSender, noReceivers, noContent,
      validBody({ sender_id: '' }),
      validBody({ sender_id: 42 }),
      validBody({ receiver_ids: [] }),
      validBody({ receiver_ids: 'alice' }),
      validBody({ receiver_ids: [''] }),
      validBody({ receiver_ids: ['ok', 7] }),
      validBody({ content: '' }),
      validBody({ content: { a: 1 } }),
      validBody({ push_config: 'yes' }),
      validBody({ push_config: { push_enabled: 'true' } }),
      validBody({ notification_config: { high_priority: 1.5 } }),
      validBody({ receiverIds: ['x'] }), // unknown (misspelt) field
    ];
    for (const body of bodies) {
      const r = await send(emu, body);
      assert.equal(r.json.code, 414, JSON.stringify(body).slice(0, 120));
    }
    assert.equal(emu.deliveries().length, 0);
  });

  test('every documented optional field is accepted', async () => {
    const r = await send(emu, validBody({
      sound: 'ding',
      push_config: {
        push_enabled: true, push_nick_enabled: false, push_content: 'hi', push_payload: '{"a":1}',
        push_forcepush_enable: true, push_forcepush_all: false, push_forcepush_ids: ['alice'], push_forcepush_content: 'HI',
      },
      route_config: { route_enabled: false, route_environment: 'prod' },
      notification_config: {
        offline_enabled: true, unread_enabled: false, notification_enabled: true,
        notification_extension: 'x', high_priority: 1, high_priority_policy: 0,
      },
    }));
    assert.equal(r.json.code, 200, r.json.msg);
  });

  test('null for an optional field → 414 (a client must omit unset fields)', async () => {
    const bodies = [
      validBody({ sound: null }),
      validBody({ push_config: null }),
      validBody({ push_config: { push_content: 'x', push_payload: null } }),
      validBody({ route_config: { route_enabled: false, route_environment: null } }),
      validBody({ receiver_ids: ['alice', null] }),
    ];
    for (const body of bodies) {
      const r = await send(emu, body);
      assert.equal(r.json.code, 414, JSON.stringify(body));
      assert.match(r.json.msg, /null/);
    }
    assert.equal(emu.deliveries().length, 0);
  });

  test('unknown accounts go to failed_list with 102404, the rest are delivered', async () => {
    const r = await send(emu, validBody({ receiver_ids: ['Alice', 'ghost1', 'GhostTwo', 'bob'] }));
    assert.equal(r.json.code, 200);
    assert.deepEqual(r.json.data.success_list, ['alice', 'bob']);
    assert.deepEqual(r.json.data.failed_list, [
      { account_id: 'ghost1', error_code: 102404, error_msg: 'account not exist' },
      { account_id: 'ghosttwo', error_code: 102404, error_msg: 'account not exist' },
    ]);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1 });
    const all = await send(emu, validBody({ receiver_ids: ['ghost9'] }));
    assert.equal(all.json.code, 200);
    assert.deepEqual(all.json.data.success_list, []);
  });

  test('an unknown sender is refused', async () => {
    const r = await send(emu, validBody({ sender_id: 'ghostsender' }));
    assert.notEqual(r.json.code, 200);
    assert.equal(emu.deliveries().length, 0);
  });

  test('knownAccounts: only listed ids are known (case-insensitive)', async () => {
    const k = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, knownAccounts: ['sender1', 'Alice'], unknownAccounts: () => false });
    try {
      const r = await send(k, validBody({ receiver_ids: ['ALICE', 'bob'] }));
      assert.deepEqual(r.json.data.success_list, ['alice']);
      assert.deepEqual(r.json.data.failed_list.map((f) => [f.account_id, f.error_code]), [['bob', 102404]]);
    } finally {
      await k.close();
    }
  });

  test('trace id replay: delivered once, original answer replayed', async () => {
    const body = validBody({ receiver_ids: ['alice', 'ghost1'] });
    const first = await send(emu, body, { traceId: 'trace-1' });
    const second = await send(emu, body, { traceId: 'trace-1' }); // fresh nonce and checksum, same trace id
    assert.equal(first.json.code, 200);
    assert.equal(second.text, first.text);
    assert.equal(second.headers['x-emulator-replayed'], '1');
    assert.equal(first.headers['x-emulator-replayed'], undefined);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
    assert.deepEqual(emu.requests().map((q) => q.replayed), [false, true]);
    assert.equal(emu.requests()[1].traceIdConflict, false);

    // A different body under a used trace id is still replayed (as Yunxin would), but flagged.
    const reused = await send(emu, validBody({ receiver_ids: ['carol'] }), { traceId: 'trace-1' });
    assert.equal(reused.text, first.text);
    assert.equal(emu.requests()[2].traceIdConflict, true);
    assert.equal(emu.deliveryCounts().carol, undefined);

    // A different trace id is a different request.
    await send(emu, body, { traceId: 'trace-2' });
    assert.deepEqual(emu.deliveryCounts(), { alice: 2 });
  });

  test('requests without a trace id are never de-duplicated', async () => {
    await send(emu, validBody({ receiver_ids: ['alice'] }));
    await send(emu, validBody({ receiver_ids: ['alice'] }));
    assert.deepEqual(emu.deliveryCounts(), { alice: 2 });
  });

  test('only successful requests are cached for replay', async () => {
    const bad = await send(emu, validBody({ content: '中'.repeat(4097) }), { traceId: 'trace-x' });
    assert.equal(bad.json.code, 405);
    const good = await send(emu, validBody({ receiver_ids: ['alice'] }), { traceId: 'trace-x' });
    assert.equal(good.json.code, 200);
    assert.equal(good.headers['x-emulator-replayed'], undefined);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
  });

  test('concurrent requests with one trace id deliver once', async () => {
    const body = validBody({ receiver_ids: ['alice'] });
    const rs = await Promise.all(Array.from({ length: 5 }, () => send(emu, body, { traceId: 'trace-c' })));
    assert.ok(rs.every((r) => r.json.code === 200));
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
  });

  test('bodies of a few MB are read (and judged)', async () => {
    const big = await send(emu, validBody({ content: 'x'.repeat(3 * 1024 * 1024) }));
    assert.equal(big.json.code, 405);
    const ids = Array.from({ length: 500 }, (_, i) => `user-${String(i).padStart(27, '0')}`);
    const r = await send(emu, validBody({ receiver_ids: ids, content: '中'.repeat(4096) }));
    assert.equal(r.json.code, 200);
    assert.equal(r.json.data.success_list.length, 500);
  });

  test('a body over maxBodyBytes → HTTP 413', async () => {
    const small = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, maxBodyBytes: 1000 });
    try {
      const r = await send(small, validBody({ content: 'x'.repeat(2000) }));
      assert.equal(r.status, 413);
      assert.equal(small.deliveries().length, 0);
      assert.equal((await send(small, validBody())).json.code, 200, 'the server still works');
    } finally {
      await small.close();
    }
  });

  test('log option gets one entry per request, without the secret', async () => {
    const entries = [];
    const logged = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, log: (e) => entries.push(e) });
    try {
      await send(logged, validBody(), { traceId: 'log-1' });
      await send(logged, validBody(), { secret: 'bad' });
    } finally {
      await logged.close();
    }
    assert.equal(entries.length, 2);
    assert.equal(entries[0].traceId, 'log-1');
    assert.equal(entries[1].code, 414);
    assert.ok(!JSON.stringify(entries).includes(APP_SECRET));
  });
});

// --- fault injection ----------------------------------------------------------------

describe('fault injection', { timeout: 30_000 }, () => {
  let emu;
  before(async () => {
    emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, seed: 42 });
  });
  after(() => emu.close(), { timeout: 5000 });
  beforeEach(() => emu.reset());

  const one = validBody({ receiver_ids: ['alice'] });

  test('http502: HTTP 502, no JSON, nothing delivered', async () => {
    emu.injectFaults({ kind: 'http502', count: 1 });
    const r = await send(emu, one);
    assert.equal(r.status, 502);
    assert.equal(r.json, undefined);
    assert.equal(emu.deliveries().length, 0);
    assert.equal(emu.requests()[0].fault, 'http502');
    assert.equal(emu.requests()[0].httpStatus, 502);
    assert.equal((await send(emu, one)).json.code, 200, 'count 1 is used up');
  });

  test('http500: HTTP 500, no JSON, nothing delivered', async () => {
    emu.injectFaults({ kind: 'http500', count: 1 });
    const r = await send(emu, one);
    assert.equal(r.status, 500);
    assert.equal(r.json, undefined);
    assert.equal(emu.deliveries().length, 0);
  });

  for (const [kind, code] of [['code416', 416], ['code500', 500], ['code503', 503]]) {
    test(`${kind}: HTTP 200 {code:${code}}, nothing delivered`, async () => {
      emu.injectFaults({ kind, count: 1 });
      const r = await send(emu, one);
      assert.equal(r.status, 200);
      assert.equal(r.json.code, code);
      assert.equal(typeof r.json.msg, 'string');
      assert.equal(emu.deliveries().length, 0);
      assert.equal(emu.requests()[0].fault, kind);
      assert.equal(emu.requests()[0].code, code);
    });
  }

  test('a faulted request is not cached: the retry with the same trace id is delivered', async () => {
    emu.injectFaults({ kind: 'code503', count: 1 });
    assert.equal((await send(emu, one, { traceId: 't-503' })).json.code, 503);
    const retry = await send(emu, one, { traceId: 't-503' });
    assert.equal(retry.json.code, 200);
    assert.equal(retry.headers['x-emulator-replayed'], undefined);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
  });

  test('slow: answers after delayMs and delivers', async () => {
    emu.injectFaults({ kind: 'slow', count: 1, delayMs: 150 });
    const t0 = performance.now();
    const r = await send(emu, one);
    assert.ok(performance.now() - t0 >= 140, 'delayed');
    assert.equal(r.json.code, 200);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
    assert.equal(emu.requests()[0].fault, 'slow');
  });

  test('slow original + fast retry with the same trace id: delivered once', async () => {
    emu.injectFaults({ kind: 'slow', count: 1, delayMs: 200 });
    const slow = send(emu, one, { traceId: 't-slow' });
    await new Promise((r) => setTimeout(r, 50));
    const fast = await send(emu, one, { traceId: 't-slow' });
    assert.equal(fast.json.code, 200);
    const late = await slow;
    assert.equal(late.headers['x-emulator-replayed'], '1');
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
  });

  test('drop: transport error, nothing delivered', async () => {
    emu.injectFaults({ kind: 'drop', count: 1 });
    await assert.rejects(send(emu, one, { traceId: 't-drop' }));
    assert.equal(emu.deliveries().length, 0);
    const [rec] = emu.requests();
    assert.equal(rec.fault, 'drop');
    assert.equal(rec.httpStatus, null);
    const retry = await send(emu, one, { traceId: 't-drop' });
    assert.equal(retry.json.code, 200);
    assert.equal(retry.headers['x-emulator-replayed'], undefined);
  });

  test('drop-after: delivered but unanswered; the retry with the same trace id is replayed', async () => {
    emu.injectFaults({ kind: 'drop-after', count: 1 });
    await assert.rejects(send(emu, one, { traceId: 't-da' }));
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 }, 'delivered although the client saw an error');
    const retry = await send(emu, one, { traceId: 't-da' });
    assert.equal(retry.json.code, 200);
    assert.deepEqual(retry.json.data.success_list, ['alice']);
    assert.equal(retry.headers['x-emulator-replayed'], '1');
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });
    assert.deepEqual(emu.requests().map((q) => [q.fault, q.httpStatus, q.code, q.replayed]), [
      ['drop-after', null, 200, false],
      [null, 200, 200, true],
    ]);
    // Without a trace id, the retry delivers twice: what a client must avoid.
    emu.injectFaults({ kind: 'drop-after', count: 1 });
    await assert.rejects(send(emu, one));
    await send(emu, one);
    assert.deepEqual(emu.deliveryCounts(), { alice: 3 });
  });

  test('count: exactly the next N signed requests; badly signed ones do not consume it', async () => {
    emu.injectFaults({ kind: 'code416', count: 2 });
    const bad = await send(emu, one, { secret: 'wrong' });
    assert.equal(bad.json.code, 414, 'a bad signature is always 414');
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await send(emu, one)).json.code);
    assert.deepEqual(codes, [416, 416, 200, 200]);
    assert.deepEqual(emu.requests().map((q) => q.fault), [null, 'code416', 'code416', null, null]);
    assert.deepEqual(emu.faults(), [], "a used-up spec is removed");
  });

  test('no count and no fraction: every request until cleared', async () => {
    emu.injectFaults({ kind: 'code500' });
    assert.equal((await send(emu, one)).json.code, 500);
    assert.equal((await send(emu, one)).json.code, 500);
    emu.clearFaults();
    assert.equal((await send(emu, one)).json.code, 200);
  });

  test('fraction: about that share, reproducible with a seed', async () => {
    const run = async (seed) => {
      const e = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, seed });
      try {
        e.injectFaults({ kind: 'code503', fraction: 0.3 });
        const codes = [];
        for (let i = 0; i < 60; i++) codes.push((await send(e, one)).json.code);
        return codes;
      } finally {
        await e.close();
      }
    };
    const a = await run(7);
    const b = await run(7);
    assert.deepEqual(a, b, 'same seed, same faults');
    const faulted = a.filter((c) => c === 503).length;
    assert.ok(faulted >= 8 && faulted <= 30, `~30% of 60, got ${faulted}`);
    assert.ok(a.includes(200));
    const c = await run(8);
    assert.notDeepEqual(a, c, 'another seed, other faults');

    // reset() re-seeds: the same sequence again.
    emu.injectFaults({ kind: 'code503', fraction: 0.5 });
    const first = [];
    for (let i = 0; i < 20; i++) first.push((await send(emu, one)).json.code);
    emu.reset();
    emu.injectFaults({ kind: 'code503', fraction: 0.5 });
    const again = [];
    for (let i = 0; i < 20; i++) again.push((await send(emu, one)).json.code);
    assert.deepEqual(again, first);
  });

  test('fraction 0 never, fraction 1 always; fraction with count stops after count', async () => {
    emu.injectFaults({ kind: 'code503', fraction: 0 });
    for (let i = 0; i < 10; i++) assert.equal((await send(emu, one)).json.code, 200);
    emu.clearFaults();
    emu.injectFaults({ kind: 'code503', fraction: 1, count: 3 });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await send(emu, one)).json.code);
    assert.deepEqual(codes, [503, 503, 503, 200, 200]);
  });

  test('several specs: tried in injection order', async () => {
    emu.injectFaults([{ kind: 'code416', count: 1 }, { kind: 'http502', count: 2 }]);
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const r = await send(emu, one);
      statuses.push(r.status === 200 ? r.json.code : `http${r.status}`);
    }
    assert.deepEqual(statuses, [416, 'http502', 'http502', 200]);
  });

  test('nonsense specs throw and add nothing', () => {
    assert.throws(() => emu.injectFaults({ kind: 'teapot' }), /unknown fault kind/);
    assert.throws(() => emu.injectFaults({ kind: 'code416', count: 0 }), /count/);
    assert.throws(() => emu.injectFaults({ kind: 'code416', fraction: 1.5 }), /fraction/);
    assert.throws(() => emu.injectFaults([{ kind: 'code416' }, { kind: 'slow', delayMs: -1 }]), /delayMs/);
    assert.deepEqual(emu.faults(), []);
  });

  // --- receiver-code: a retryable code for some receivers of an otherwise good call ---

  const five = validBody({ receiver_ids: ['alice', 'User3', 'bob', 'user7', 'carol'] });
  const failed = (r) => r.json.data.failed_list.map((f) => [f.account_id, f.error_code]);

  test('receiver-code: named receivers fail with the code, the others are delivered', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['user3', 'USER7'] });
    const r = await send(emu, five, { traceId: 'rc-1' });
    assert.equal(r.status, 200);
    assert.equal(r.json.code, 200);
    assert.deepEqual(r.json.data.success_list, ['alice', 'bob', 'carol']);
    assert.deepEqual(r.json.data.failed_list, [
      { account_id: 'user3', error_code: 102503, error_msg: 'server busy' },
      { account_id: 'user7', error_code: 102503, error_msg: 'server busy' },
    ]);
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1 });
    assert.deepEqual(emu.deliveries().map((d) => d.receiverId), ['alice', 'bob', 'carol']);
    const [rec] = emu.requests();
    assert.deepEqual([rec.fault, rec.httpStatus, rec.code, rec.delivered], ['receiver-code', 200, 200, 3]);
    // No count: every call, until cleared.
    assert.deepEqual(failed(await send(emu, five)), [['user3', 102503], ['user7', 102503]]);
    emu.clearFaults();
    assert.deepEqual((await send(emu, five)).json.data.failed_list, []);
  });

  test('receiver-code: prefix (case-insensitive), every allowed code, unknown accounts keep 102404', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102449, prefix: 'Flaky' });
    const r = await send(emu, validBody({ receiver_ids: ['FlakyA', 'alice', 'ghost1', 'flakyb', 'flakyb'] }));
    assert.deepEqual(r.json.data.success_list, ['alice']);
    assert.deepEqual(failed(r), [['flakya', 102449], ['ghost1', 102404], ['flakyb', 102449], ['flakyb', 102449]]);
    assert.equal(r.json.data.failed_list[0].error_msg, 'need retry');
    assert.deepEqual(emu.deliveryCounts(), { alice: 1 });

    const msgs = { 102416: 'frequency control', 102449: 'need retry', 102500: 'internal error', 102503: 'server busy', 102514: 'service unavailable' };
    for (const [code, msg] of Object.entries(msgs)) {
      emu.reset();
      emu.injectFaults({ kind: 'receiver-code', code: Number(code), accounts: ['alice'], prefix: 'zz' });
      const x = await send(emu, validBody({ receiver_ids: ['alice', 'zzTop', 'bob'] }));
      assert.deepEqual(x.json.data.failed_list, [
        { account_id: 'alice', error_code: Number(code), error_msg: msg },
        { account_id: 'zztop', error_code: Number(code), error_msg: msg },
      ], 'accounts and prefix both match');
      assert.deepEqual(x.json.data.success_list, ['bob']);
    }
  });

  test('receiver-code count: counts failed receivers; after it, a new trace id delivers them', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['user3', 'user7'], count: 2 });
    const first = await send(emu, five, { traceId: 'rc-a' });
    assert.deepEqual(failed(first), [['user3', 102503], ['user7', 102503]]);
    assert.deepEqual(emu.faults(), [], 'two receivers used up count 2');
    // The client retries only the failed receivers, as a new logical call.
    const retry = await send(emu, validBody({ receiver_ids: ['user3', 'user7'] }), { traceId: 'rc-b' });
    assert.deepEqual(retry.json.data, { success_list: ['user3', 'user7'], failed_list: [] });
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, carol: 1, user3: 1, user7: 1 });
    assert.deepEqual(emu.requests().map((q) => q.fault), ['receiver-code', null]);

    // count 1: the first matching receiver only; duplicates of it in the call share its fate.
    emu.reset();
    emu.injectFaults({ kind: 'receiver-code', code: 102500, accounts: ['user3', 'user7'], count: 1 });
    const once = await send(emu, validBody({ receiver_ids: ['user3', 'user7', 'user3'] }));
    assert.deepEqual(failed(once), [['user3', 102500], ['user3', 102500]]);
    assert.deepEqual(once.json.data.success_list, ['user7']);

    // Calls without a matching receiver do not spend the count.
    emu.reset();
    emu.injectFaults({ kind: 'receiver-code', code: 102514, accounts: ['user3'], count: 1 });
    await send(emu, validBody({ receiver_ids: ['alice'] }));
    assert.equal(emu.faults()[0].remaining, 1);
    assert.equal(emu.requests()[0].fault, null);
    assert.deepEqual(failed(await send(emu, five)), [['user3', 102514]]);
    assert.deepEqual(failed(await send(emu, five)), []);
  });

  test('receiver-code: a retry with the same trace id replays the partial answer, count untouched', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, accounts: ['user3'], count: 1 });
    const first = await send(emu, five, { traceId: 'rc-replay' });
    assert.deepEqual(failed(first), [['user3', 102503]]);
    const again = await send(emu, five, { traceId: 'rc-replay' });
    assert.equal(again.text, first.text);
    assert.equal(again.headers['x-emulator-replayed'], '1');
    assert.deepEqual(emu.deliveryCounts(), { alice: 1, bob: 1, user7: 1, carol: 1 }, 'nothing delivered twice, user3 not at all');
    assert.deepEqual(emu.requests().map((q) => [q.fault, q.replayed]), [['receiver-code', false], [null, true]]);
    // A new trace id is processed anew: count 1 is used up, so user3 goes through.
    const fresh = await send(emu, validBody({ receiver_ids: ['user3'] }), { traceId: 'rc-new' });
    assert.deepEqual(fresh.json.data, { success_list: ['user3'], failed_list: [] });
  });

  test('receiver-code never shadows a request-level fault, and is not spent by it', async () => {
    emu.injectFaults([{ kind: 'receiver-code', code: 102503, accounts: ['user3'], count: 1 }, { kind: 'code503', count: 1 }]);
    assert.equal((await send(emu, five, { traceId: 'rc-s' })).json.code, 503);
    const retry = await send(emu, five, { traceId: 'rc-s' });
    assert.deepEqual(failed(retry), [['user3', 102503]]);
    assert.deepEqual(emu.requests().map((q) => q.fault), ['code503', 'receiver-code']);
  });

  test('receiver-code fraction (per matching receiver) and delayMs (holds back the answer)', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, prefix: 'user', fraction: 0 });
    assert.deepEqual(failed(await send(emu, five)), []);
    emu.clearFaults();
    emu.injectFaults({ kind: 'receiver-code', code: 102503, prefix: 'user', fraction: 1, count: 1, delayMs: 150 });
    const t0 = performance.now();
    const r = await send(emu, five);
    assert.ok(performance.now() - t0 >= 140, 'delayed');
    assert.deepEqual(failed(r), [['user3', 102503]]);
    const t1 = performance.now();
    assert.deepEqual(failed(await send(emu, five)), []);
    assert.ok(performance.now() - t1 < 140, 'no delay once nothing is failed');
  });

  test('receiver-code: bad specs throw a clear TypeError and add nothing', () => {
    const rc = (extra) => () => emu.injectFaults({ kind: 'receiver-code', ...extra });
    assert.throws(rc({ accounts: ['a'] }), { name: 'TypeError', message: /code must be one of 102416, 102449, 102500, 102503, 102514/ });
    for (const code of [503, 102404, 102421, '102503', 102503.5, null]) {
      assert.throws(rc({ code, accounts: ['a'] }), { name: 'TypeError', message: /code must be one of/ }, String(code));
    }
    assert.throws(rc({ code: 102503 }), { name: 'TypeError', message: /needs accounts and\/or prefix/ });
    for (const accounts of ['user3', [], [''], ['ok', 7], [null], ['x'.repeat(33)]]) {
      assert.throws(rc({ code: 102503, accounts }), { name: 'TypeError', message: /accounts must be a non-empty array/ }, JSON.stringify(accounts));
    }
    assert.throws(rc({ code: 102503, prefix: '' }), { name: 'TypeError', message: /prefix must be a non-empty string/ });
    assert.throws(rc({ code: 102503, prefix: 7 }), { name: 'TypeError', message: /prefix/ });
    assert.throws(rc({ code: 102503, accounts: ['a'], count: 0 }), /count/);
    assert.throws(() => emu.injectFaults({ kind: 'code503', accounts: ['a'] }), { name: 'TypeError', message: /only to kind 'receiver-code'/ });
    assert.throws(() => emu.injectFaults([{ kind: 'receiver-code', code: 102503, accounts: ['a'] }, { kind: 'receiver-code', code: 1 }]), /code/);
    assert.deepEqual(emu.faults(), []);
  });
});

// --- HTTP control endpoints ------------------------------------------------------------

describe('HTTP control endpoints', { timeout: 30_000 }, () => {
  let emu;
  before(async () => {
    emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  });
  after(() => emu.close(), { timeout: 5000 });

  const ctl = (method, path, body) => request(emu.url, { method, path, body });

  test('healthz, deliveries, requests, counts, faults, reset', async () => {
    assert.deepEqual((await ctl('GET', '/healthz')).json, { ok: true });

    await send(emu, validBody(), { traceId: 'ctl-1' });
    const deliveries = (await ctl('GET', '/_emulator/deliveries')).json;
    assert.deepEqual(deliveries.map((d) => d.receiverId), ['alice', 'bob']);
    assert.equal(deliveries[0].traceId, 'ctl-1');
    assert.deepEqual((await ctl('GET', '/_emulator/counts')).json, { alice: 1, bob: 1 });
    const requests = (await ctl('GET', '/_emulator/requests')).json;
    assert.equal(requests.length, 1, 'control calls are not in the request log');
    assert.equal(requests[0].code, 200);

    const inj = await ctl('POST', '/_emulator/faults', { kind: 'code416', count: 1 });
    assert.equal(inj.status, 200);
    assert.equal(inj.json.faults.length, 1);
    assert.equal((await ctl('GET', '/_emulator/faults')).json[0].kind, 'code416');
    assert.equal((await send(emu, validBody())).json.code, 416);

    await ctl('POST', '/_emulator/faults', [{ kind: 'code500' }]);
    assert.equal((await ctl('DELETE', '/_emulator/faults')).status, 200);
    assert.equal((await send(emu, validBody())).json.code, 200);

    const bad = await ctl('POST', '/_emulator/faults', { kind: 'teapot' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /unknown fault kind/);
    assert.equal((await ctl('POST', '/_emulator/faults', 'not json')).status, 400);

    const rc = await ctl('POST', '/_emulator/faults', { kind: 'receiver-code', code: 102449, accounts: ['Bob'], count: 1 });
    assert.equal(rc.status, 200);
    assert.deepEqual((await ctl('GET', '/_emulator/faults')).json, [
      { kind: 'receiver-code', count: 1, delayMs: 0, remaining: 1, code: 102449, accounts: ['bob'] },
    ]);
    const partial = await send(emu, validBody());
    assert.deepEqual(partial.json.data, {
      success_list: ['alice'],
      failed_list: [{ account_id: 'bob', error_code: 102449, error_msg: 'need retry' }],
    });
    const badRc = await ctl('POST', '/_emulator/faults', { kind: 'receiver-code', code: 102404, accounts: ['bob'] });
    assert.equal(badRc.status, 400);
    assert.match(badRc.json.error, /code must be one of/);

    assert.equal((await ctl('POST', '/_emulator/reset')).status, 200);
    assert.deepEqual((await ctl('GET', '/_emulator/deliveries')).json, []);
    assert.deepEqual((await ctl('GET', '/_emulator/requests')).json, []);
    assert.deepEqual((await ctl('GET', '/_emulator/counts')).json, {});

    // reset also forgets trace ids
    await send(emu, validBody(), { traceId: 'ctl-1' });
    assert.deepEqual((await ctl('GET', '/_emulator/counts')).json, { alice: 1, bob: 1 });

    assert.equal((await ctl('GET', '/_emulator/nope')).status, 404);
    assert.equal((await ctl('PUT', '/_emulator/reset')).status, 405);
  });
});

// --- lifecycle ----------------------------------------------------------------------

describe('lifecycle', { timeout: 30_000 }, () => {
  test('options are checked', async () => {
    await assert.rejects(startEmulator({}), /apps/);
    await assert.rejects(startEmulator({ apps: {} }), /apps/);
    await assert.rejects(startEmulator({ apps: { k: '' } }), /appSecret/);
  });

  test('close() ends keep-alive connections and pending delays: no handles left', { timeout: 5000 }, async () => {
    const own = new http.Agent({ keepAlive: true });
    const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
    assert.match(emu.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(emu.url, `http://127.0.0.1:${emu.port}`);
    const r = await request(emu.url, { body: validBody(), headers: signedHeaders(), agent: own });
    assert.equal(r.json.code, 200);
    // A keep-alive socket is now idle in `own`, and a slow request is pending.
    emu.injectFaults({ kind: 'slow', delayMs: 60_000 });
    const pending = request(emu.url, { body: validBody(), headers: signedHeaders(), agent: own }).catch((e) => e);
    await new Promise((res) => setTimeout(res, 50));
    if (!(await resolvesWithin(emu.close(), 2000))) {
      own.destroy(); // let the process end so the failure is reported
      assert.fail('close() did not resolve: keep-alive sockets were not destroyed');
    }
    await emu.close(); // idempotent
    assert.ok((await pending) instanceof Error, 'the pending request is cut off');
    // Give the client side a moment to see the closed sockets.
    for (let i = 0; i < 50 && tcpHandles() > 0; i++) await new Promise((res) => setTimeout(res, 10));
    own.destroy();
    agent.destroy(); // the shared test agent: all earlier emulators are closed by now
    assert.equal(tcpHandles(), 0, `left: ${process.getActiveResourcesInfo().join(', ')}`);
    assert.ok(!process.getActiveResourcesInfo().includes('Timeout'), 'the pending delay timer is cleared');
  });
});

async function resolvesWithin(promise, ms) {
  let timer;
  const timeout = new Promise((res) => { timer = setTimeout(() => res(false), ms); });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function tcpHandles() {
  return process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
}
