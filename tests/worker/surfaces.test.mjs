// Hostile input on the Worker's newer surfaces (issue 19), each finding of
// an attack run as a test that failed before its fix: a signature header
// that made verification cost grow with what the sender sent, dry runs
// that sent, metric labels and log lines anybody could grow, unlimited
// guesses at STATUS_TOKEN, sessions that could not be ended, control
// characters in a redirect, a retry body that was a JSON array, numeric
// ids that lost digits, and a signed operator request not tied to its
// path. Each asserts what a client sees and what reaches the emulator.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startEmulator } from '../../emulator/index.mjs';
import { webhookHeaders } from '../../scripts/lib/webhook.mjs';
import { APP_KEY, APP_SECRET, WEBHOOK_SECRET, notification, postEvent, request, startRelay } from './harness.mjs';

const TOKEN = 'surfaces-status-token';
const HOOK_TOKEN = 'surfaces-hook-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const ROUTES = {
  ids: {
    verify: { scheme: 'bearer', secrets: ['HOOK_TOKEN'] },
    sender_id: 'bot',
    receivers_from: 'payload.to',
    content: 'for {{ payload.to }}',
  },
  signed: {
    verify: { scheme: 'standard-webhooks', secrets: ['WEBHOOK_SECRET'] },
    sender_id: 'bot',
    receivers: ['someone'],
    content: 'signed',
  },
};

let emu;
let relay;
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET }, unknownAccounts: (id) => id.startsWith('ghost') });
  relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    STATUS_TOKEN: TOKEN,
    RETRY_SCHEDULE_SECS: '1',
    YUNXIN_RATE_PER_MINUTE: '6000',
    ROUTES,
    HOOK_TOKEN,
  });
});
after(async () => {
  await relay?.close();
  await emu?.close();
});
beforeEach(() => emu.reset());

const hook = (route, body, { query = '', headers = { authorization: `Bearer ${HOOK_TOKEN}` }, wait = true } = {}) =>
  request(`${relay.url}/v1/hooks/${route}${query}`, {
    headers: { 'content-type': 'application/json', ...(wait ? { prefer: 'wait' } : {}), ...headers },
    body,
  });

describe('signature checks cost the same whatever the sender sends', () => {
  // 4,000 `v1,AA==` entries over a 1 MiB body took 10 s to refuse when each
  // entry recomputed the HMAC over the body, and /healthz timed out meanwhile.
  const body = JSON.stringify({ sender_id: 'bot', receiver_ids: ['a'], content: 'x', pad: 'p'.repeat(1024 * 1024 - 100) });
  const bomb = (path) => {
    const headers = webhookHeaders(body, { secret: WEBHOOK_SECRET });
    headers['webhook-signature'] = Array(4000).fill('v1,AA==').join(' ');
    return request(`${relay.url}${path}`, { headers: { 'content-type': 'application/json', ...headers }, body });
  };

  for (const path of ['/v1/notifications', '/v1/hooks/signed']) {
    test(`4,000 signatures on ${path}: refused naming the limit, while /healthz answers`, async () => {
      const [answer, health] = await Promise.all([bomb(path), request(`${relay.url}/healthz`, { method: 'GET' })]);
      assert.equal(answer.status, 401, answer.text);
      assert.match(answer.json.error.message, /webhook-signature.*more than 32 signatures/);
      assert.equal(health.status, 200);
      assert.equal(emu.requests().length, 0);
    });
  }

  test('a genuine signature among 31 others still passes', async () => {
    const event = JSON.stringify(notification(1, { prefix: 'among' }));
    const headers = webhookHeaders(event, { secret: WEBHOOK_SECRET });
    headers['webhook-signature'] = `${Array(31).fill('v1,AA==').join(' ')} ${headers['webhook-signature']}`;
    const answer = await request(`${relay.url}/v1/notifications`, { headers: { 'content-type': 'application/json', prefer: 'wait', ...headers }, body: event });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json.delivered, ['among0']);
  });
});

describe('dry runs never send, and misspelt parameters are refused', () => {
  test('dry_run takes 1, true or nothing (yes) and 0 or false (no); anything else is a 400 naming it', async () => {
    for (const value of ['TRUE', 'True', 'yes', 'on', '2', 'maybe']) {
      const answer = await hook('ids', JSON.stringify({ to: `dry-${value}` }), { query: `?dry_run=${value}` });
      assert.equal(answer.status, 400, `${value}: ${answer.text}`);
      assert.deepEqual([answer.json.error.code, answer.json.error.field], ['bad_query', 'dry_run'], value);
    }
    const twice = await hook('ids', JSON.stringify({ to: 'dry-twice' }), { query: '?dry_run=1&dry_run=0' });
    assert.deepEqual([twice.status, twice.json.error.field], [400, 'dry_run']);
    assert.equal(emu.requests().length, 0, 'nothing reached Yunxin');

    const dry = await hook('ids', JSON.stringify({ to: 'dry-yes' }), { query: '?dry_run' });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.dry_run, true);
    assert.equal(emu.requests().length, 0);
    const wet = await hook('ids', JSON.stringify({ to: 'dry-no' }), { query: '?dry_run=false' });
    assert.equal(wet.status, 200, wet.text);
    assert.deepEqual(wet.json.delivered, ['dry-no']);
  });

  test('unknown parameters (DRY_RUN, dry-run, dryrun, a typo of wait) are refused on hooks and notifications', async () => {
    for (const query of ['?DRY_RUN=1', '?dry-run=1', '?dryrun=1', '?wiat=1']) {
      const answer = await hook('ids', JSON.stringify({ to: 'misspelt' }), { query });
      assert.equal(answer.status, 400, `${query}: ${answer.text}`);
      assert.equal(answer.json.error.code, 'bad_query');
      assert.equal(answer.json.error.field, query.slice(1, query.indexOf('=')));
      assert.match(answer.json.error.message, /takes wait, dry_run/);
    }
    const posted = await postEvent(relay.url, notification(1, { prefix: 'misspelt' }), { wait: false });
    assert.equal(posted.status, 202, 'no parameter: fine');
    const body = JSON.stringify(notification(1, { prefix: 'misspelt-n' }));
    const misspelt = await request(`${relay.url}/v1/notifications?dry_run=1`, {
      headers: { 'content-type': 'application/json', ...webhookHeaders(body, { secret: WEBHOOK_SECRET }) },
      body,
    });
    assert.deepEqual([misspelt.status, misspelt.json.error.field], [400, 'dry_run'], '/v1/notifications has no dry run');
  });
});

describe('numeric ids keep their digits', () => {
  test('a 23-digit id from receivers_from reaches Yunxin digit for digit; 1.5 is a 422 naming receivers_from', async () => {
    const answer = await hook('ids', '{"to": [12345678901234567890123, 42]}');
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json.delivered.sort(), ['12345678901234567890123', '42']);
    assert.deepEqual(emu.deliveries().map((d) => d.receiverId).sort(), ['12345678901234567890123', '42']);
    assert.match(emu.deliveries()[0].content, /12345678901234567890123/, 'the content shows the digits too');

    const fraction = await hook('ids', '{"to": 1.5}');
    assert.equal(fraction.status, 422, fraction.text);
    assert.equal(fraction.json.error.field, 'receivers_from');
    assert.match(fraction.json.error.message, /not an integer/);
  });

  test('the skipped answer does not show the route\'s filter', async () => {
    const filtered = await startRelay({
      YUNXIN_BASE_URL: emu.url,
      HOOK_TOKEN,
      ROUTES: { secretive: { ...ROUTES.ids, filter: "payload.kind == 'internal-4f2a'" } },
    });
    try {
      const answer = await request(`${filtered.url}/v1/hooks/secretive`, {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${HOOK_TOKEN}` },
        body: '{"kind": "other", "to": "x"}',
      });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(typeof answer.json.skipped, 'string');
      assert.doesNotMatch(answer.text, /internal-4f2a|payload\.kind/);
    } finally {
      await filtered.close();
    }
  });
});

describe('operator requests', () => {
  /** Two delivered events, each with a receiver failed for good. */
  async function twoEvents() {
    const events = [];
    for (const prefix of ['one', 'two']) {
      const body = notification(1, { prefix });
      body.receiver_ids.push(`ghost-${prefix}`);
      const answer = await postEvent(relay.url, body);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.json.failed[0].error_code, 102404);
      events.push(answer.id);
    }
    emu.reset();
    return events;
  }
  const retry = (id, body, headers = auth) =>
    request(`${relay.url}/v1/events/${encodeURIComponent(id)}/retry`, { headers: { 'content-type': 'application/json', ...headers }, body });

  test('a retry body must be the documented object: [true] and unknown fields are 400, nothing sent', async () => {
    const [id] = await twoEvents();
    for (const body of ['[true]', '[]', 'true', '"all"', '{"all": true, "everyone": true}', '{"all": "yes"}']) {
      const answer = await retry(id, body);
      assert.equal(answer.status, 400, `${body}: ${answer.text}`);
      assert.equal(answer.json.error.code, 'bad_body', body);
    }
    assert.equal(emu.requests().length, 0, 'the receiver failed for good was not sent again');
  });

  test('the operator API takes only the bearer token: a signed retry works on no path', async () => {
    const [first, second] = await twoEvents();
    const body = '{"all": true}';
    const signed = webhookHeaders(body, { secret: WEBHOOK_SECRET });
    for (const id of [first, second]) {
      const answer = await retry(id, body, signed);
      assert.equal(answer.status, 401, answer.text);
      assert.equal(answer.json.error.code, 'unauthorized');
    }
    const status = await request(`${relay.url}/v1/events/${first}`, { method: 'GET', headers: webhookHeaders('', { secret: WEBHOOK_SECRET }) });
    assert.equal(status.status, 401);
    assert.equal(emu.requests().length, 0);
  });

  test('a malformed cursor is a 400 naming it, not the first page', async () => {
    for (const cursor of ['garbage', '12', '.evt', 'x.evt', '12.has%20space']) {
      const answer = await request(`${relay.url}/v1/events?cursor=${cursor}`, { method: 'GET', headers: auth });
      assert.deepEqual([answer.status, answer.json?.error?.field], [400, 'cursor'], cursor);
    }
    const fine = await request(`${relay.url}/v1/events?cursor=1796000000000.evt_x`, { method: 'GET', headers: auth });
    assert.equal(fine.status, 200, fine.text);
  });
});

describe('dashboard sessions', () => {
  /** A request that does not follow redirects. */
  const http = async (url, { method = 'GET', headers = {}, body } = {}) => {
    const form = body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' };
    const response = await fetch(url, { method, headers: { ...form, ...headers }, body, redirect: 'manual' });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  const signIn = async (next) => {
    const form = `token=${encodeURIComponent(TOKEN)}${next === undefined ? '' : `&next=${encodeURIComponent(next)}`}`;
    const answer = await http(`${relay.url}/dashboard/login`, { method: 'POST', body: form });
    assert.equal(answer.status, 303, answer.text);
    return { cookie: answer.headers.get('set-cookie').split(';')[0], location: answer.headers.get('location') };
  };
  const page = (cookie) => http(`${relay.url}/dashboard`, { headers: { cookie } });
  const logoutCsrf = (html) => html.match(/action="\/dashboard\/logout"><input type="hidden" name="csrf" value="([0-9a-f]{64})"/)[1];

  test('control characters in next never reach Location: the sign-in answers /dashboard and sets its cookie', async () => {
    for (const next of ['/dashboard/events/a\0b', '/dashboard/events/a\x01', '/dashboard/events/a\x7f', '/dashboard/x\r\nSet-Cookie: evil=1']) {
      const { location, cookie } = await signIn(next);
      assert.equal(location, '/dashboard', JSON.stringify(next));
      assert.match(cookie, /^yx_ops_session=v1\./);
    }
    assert.equal((await signIn('/dashboard/quota')).location, '/dashboard/quota');
  });

  test('sign-out ends that session at once; "End all sessions" ends every one', async () => {
    const a = (await signIn()).cookie;
    const b = (await signIn()).cookie;
    const shown = await page(a);
    assert.equal(shown.status, 200);
    const out = await http(`${relay.url}/dashboard/logout`, { method: 'POST', headers: { cookie: a }, body: `csrf=${logoutCsrf(shown.text)}` });
    assert.equal(out.status, 303);
    assert.equal((await page(a)).status, 302, 'a copy of the signed-out cookie is refused');
    assert.equal((await page(b)).status, 200, 'another session goes on');

    const c = (await signIn()).cookie;
    const fromB = await page(b);
    const everywhere = await http(`${relay.url}/dashboard/logout`, { method: 'POST', headers: { cookie: b }, body: `csrf=${logoutCsrf(fromB.text)}&scope=everywhere` });
    assert.equal(everywhere.status, 303);
    for (const cookie of [b, c]) assert.equal((await page(cookie)).status, 302);
    // Signing in again works.
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal((await page((await signIn()).cookie)).status, 200);
  });
});

describe('STATUS_TOKEN guesses are limited per client', () => {
  test('5 wrong tokens, then 429 with Retry-After everywhere the token opens, even for the right one', async () => {
    // A Worker of its own: the limit would lock every other test out.
    const guarded = await startRelay({ YUNXIN_BASE_URL: emu.url, STATUS_TOKEN: TOKEN });
    try {
      const login = (token) =>
        fetch(`${guarded.url}/dashboard/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `token=${encodeURIComponent(token)}`,
          redirect: 'manual',
        });
      for (let i = 0; i < 5; i++) assert.equal((await login(`wrong-${i}`)).status, 401);
      const limited = await login('wrong-5');
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      const right = await login(TOKEN);
      assert.equal(right.status, 429, 'the right token is refused too while limited');
      assert.equal(right.headers.get('set-cookie'), null);
      const metrics = await fetch(`${guarded.url}/metrics`, { headers: auth });
      assert.equal(metrics.status, 429);
      const api = await request(`${guarded.url}/v1/events`, { method: 'GET', headers: auth });
      assert.deepEqual([api.status, api.json.error.code], [429, 'too_many_attempts']);
      assert.ok(Number(api.headers.get('retry-after')) > 0);
    } finally {
      await guarded.close();
    }
  });
});

describe('metric labels and log lines come only from names the config knows', () => {
  test('300 random route names leave /metrics with the same series, and neither it nor the log names them', async () => {
    // ROUTES unset, as the config ships: every hook path is a 500.
    const bare = await startRelay({ YUNXIN_BASE_URL: emu.url, STATUS_TOKEN: TOKEN });
    try {
      const metrics = async () => (await fetch(`${bare.url}/metrics`, { headers: auth })).text();
      const series = (text) => text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
      const post = (name) => request(`${bare.url}/v1/hooks/${name}`, { headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal((await post('warm-up')).status, 500);
      let before;
      for (let i = 0; i < 20 && !(before = await metrics()).includes('events_rejected_total{route="(unknown)"'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const names = Array.from({ length: 300 }, () => `r-${randomBytes(12).toString('hex')}`);
      for (let i = 0; i < names.length; i += 20) await Promise.all(names.slice(i, i + 20).map(post));
      let after;
      for (let i = 0; i < 50; i++) {
        after = await metrics();
        if (after.includes('events_rejected_total{route="(unknown)",status="500"} 301')) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.match(after, /events_rejected_total\{route="\(unknown\)",status="500"\} 301/);
      assert.deepEqual(series(after), series(before));
      assert.ok(after.length - before.length <= 4, `${after.length - before.length} more bytes`);
      const logs = bare.logs.join('\n');
      for (const name of [...names, 'warm-up']) {
        assert.ok(!after.includes(name) && !logs.includes(name), name);
      }
    } finally {
      await bare.close();
    }
  });
});
