// The operations dashboard and /metrics, served by the Worker from its
// Durable Objects, in a real browser: headless Chromium driven by playwright-core.
// Sign in, the events of a burst with failures, one event, its retry, the
// quota chart; everything refused without a session (or with a cookie from
// another secret, or a retry without its CSRF token); /metrics parsed by a
// Prometheus text parser and checked against the emulator's record.
// Screenshots go to test-output/dashboard/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, notification, postEvent, rawRequest, request, startRelay } from './harness.mjs';

const TOKEN = 'dashboard-status-token';
const DEPLOY_SECRET = 'dashboard-deploy-hook-secret';
const SHOTS = new URL('../../test-output/dashboard/', import.meta.url);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

let emu;
let relay;
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    STATUS_TOKEN: TOKEN,
    RETRY_SCHEDULE_SECS: '1', // a failed receiver ends failed quickly
    YUNXIN_RATE_PER_MINUTE: '60', // the burst's calls come close to the quota line
    // A webhook route, so that the list shows one.
    ROUTES: {
      deploys: {
        verify: { scheme: 'bearer', secrets: ['DEPLOY_HOOK_SECRET'] },
        sender_id: 'deploy-bot',
        receivers_from: 'payload.to',
        content: '{{ payload.text }}',
      },
    },
    DEPLOY_HOOK_SECRET: DEPLOY_SECRET,
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await relay?.close();
  await emu?.close();
});

/** A request that does not follow redirects: `{ status, headers, text }`. */
async function http(path, { method = 'GET', headers = {}, body } = {}) {
  const form = body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' };
  const response = await fetch(`${relay.url}${path}`, { method, headers: { ...form, ...headers }, body, redirect: 'manual' });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const api = (path) => request(`${relay.url}${path}`, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });

/** Waits until the relay's list says every one of `ids` left `pending`; answers their summaries by id. */
async function settled(ids) {
  return eventually(
    async () => {
      const { json } = await api('/v1/events?limit=100');
      const byId = Object.fromEntries(json.events.map((e) => [e.event_id, e]));
      return ids.every((id) => byId[id] && byId[id].state !== 'pending') ? byId : null;
    },
    { ms: 90_000, what: `${ids.length} events settled` },
  );
}

/**
 * /metrics parsed: `{ families, series }`. `families` by name, as the
 * parser reads them. The parser folds a histogram's series into one and
 * drops their labels when there are several (labelled by endpoint here), so
 * `series` also has every sample by its own name (`…_bucket`, `…_sum`,
 * `…_count`), parsed again with the TYPE lines left out.
 */
async function metrics() {
  const response = await request(`${relay.url}/metrics`, { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(response.status, 200, response.text);
  assert.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const byName = (families) => Object.fromEntries(families.map((f) => [f.name, f]));
  return {
    families: byName(parsePrometheusTextFormat(response.text)),
    series: byName(parsePrometheusTextFormat(response.text.replace(/^# (TYPE|HELP) .*$/gm, ''))),
  };
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total({ series }, name, labels = {}) {
  const family = series[name];
  if (!family) return 0;
  return family.metrics
    .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((sum, m) => sum + Number(m.value ?? m.count), 0);
}

/** A session cookie as the Worker makes one (dashboard/src/session.rs), under `secret`. */
function forgeSession(secret, { expiresMs = Date.now() + 3_600_000 } = {}) {
  const key = createHmac('sha256', secret).update('yunxin-edge-ops session key v1').digest();
  const signed = `v1.${expiresMs}.${randomBytes(16).toString('hex')}`;
  const mac = createHmac('sha256', key);
  for (const part of ['session', signed]) {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(Buffer.byteLength(part)));
    mac.update(length).update(part);
  }
  return `yx_ops_session=${signed}.${mac.digest('hex')}`;
}

/** Signs in with fetch; answers the session cookie (`name=value`). */
async function signIn() {
  const response = await http('/dashboard/login', { method: 'POST', body: `token=${encodeURIComponent(TOKEN)}` });
  assert.equal(response.status, 303);
  return response.headers.get('set-cookie').split(';')[0];
}

const eventPath = (id) => `/dashboard/events/${encodeURIComponent(id)}`;

describe('dashboard access', () => {
  test('without a session every dashboard URL redirects to the sign-in page (GET) or answers 401 (POST); /metrics answers 401 without the bearer token', async () => {
    const event = await postEvent(relay.url, notification(2, { prefix: 'access' }));
    assert.equal(event.status, 200, event.text);
    const gets = {
      '/dashboard': '/dashboard/login',
      '/dashboard?state=delivered': '/dashboard/login?next=%2Fdashboard%3Fstate%3Ddelivered',
      '/dashboard/quota': '/dashboard/login?next=%2Fdashboard%2Fquota',
      [eventPath(event.id)]: `/dashboard/login?next=${encodeURIComponent(eventPath(event.id))}`,
      '/dashboard/no-such-page': '/dashboard/login?next=%2Fdashboard%2Fno-such-page',
    };
    for (const [path, location] of Object.entries(gets)) {
      const response = await http(path);
      assert.equal(response.status, 302, path);
      assert.equal(response.headers.get('location'), location, path);
      assert.ok(!response.text.includes(event.id), `${path} shows nothing`);
    }
    const requestsBefore = emu.requests().length;
    for (const path of [`${eventPath(event.id)}/retry`, '/dashboard/logout', '/dashboard/events']) {
      const response = await request(`${relay.url}${path}`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'csrf=x&scope=all',
      });
      assert.equal(response.status, 401, path);
    }
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
      const response = await request(`${relay.url}/metrics`, { method: 'GET', headers });
      assert.equal(response.status, 401, JSON.stringify(headers));
      assert.ok(!response.text.includes('yunxin_edge_'));
    }
    // The sign-in page itself answers, and a wrong token gets no cookie.
    const form = await request(`${relay.url}/dashboard/login`, { method: 'GET' });
    assert.equal(form.status, 200);
    assert.match(form.text, /<label for="token">/);
    const wrong = await request(`${relay.url}/dashboard/login`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=not-the-token',
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    assert.match(wrong.text, /That is not the status token/);
    assert.equal(emu.requests().length, requestsBefore, 'nothing was sent');
  });

  test('a session cookie signed with another secret, or expired, is refused; one signed with STATUS_TOKEN passes', async () => {
    const get = (cookie) => http('/dashboard', { headers: { cookie } });
    // The forgery is right: under the real token it is accepted.
    const genuine = await get(forgeSession(TOKEN));
    assert.equal(genuine.status, 200);
    assert.match(genuine.text, /<h1>Events<\/h1>/);

    for (const cookie of [
      forgeSession('another-status-token'),
      forgeSession(TOKEN, { expiresMs: Date.now() - 1000 }),
      forgeSession(TOKEN, { expiresMs: Date.now() + 30 * 86_400_000 }), // longer than any session lasts
      flipLast(forgeSession(TOKEN)),
      'yx_ops_session=v1.9999999999999.00.00',
    ]) {
      const response = await get(cookie);
      assert.equal(response.status, 302, cookie);
      assert.equal(response.headers.get('location'), '/dashboard/login');
      const post = await http('/dashboard/logout', { method: 'POST', headers: { cookie }, body: 'csrf=x' });
      assert.equal(post.status, 401);
    }
  });

  test('sign-in sets an HttpOnly, Secure, SameSite=Strict cookie scoped to /dashboard, and goes back to the page asked for', async () => {
    const response = await http('/dashboard/login', {
      method: 'POST',
      body: `token=${encodeURIComponent(TOKEN)}&next=${encodeURIComponent('/dashboard/quota')}`,
    });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), '/dashboard/quota');
    const attributes = response.headers.get('set-cookie').split('; ');
    for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/dashboard']) assert.ok(attributes.includes(attribute), attribute);
    // Elsewhere: never sent back off the site.
    const offsite = await http('/dashboard/login', {
      method: 'POST',
      body: `token=${encodeURIComponent(TOKEN)}&next=${encodeURIComponent('//evil.example/dashboard')}`,
    });
    assert.equal(offsite.headers.get('location'), '/dashboard');
  });

  test('a sign-in body over 4 KiB is refused (413) unread, announced or streamed', async () => {
    const big = `token=${'x'.repeat(1024 * 1024)}`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const announced = await rawRequest(`${relay.url}/dashboard/login`, { headers, body: big });
    assert.equal(announced.status, 413);
    const streamed = await fetch(`${relay.url}/dashboard/login`, {
      method: 'POST',
      headers,
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big.slice(0, 8192)));
          controller.close();
        },
      }),
      duplex: 'half',
    });
    assert.equal(streamed.status, 413);
  });
});

describe('the dashboard in a browser', () => {
  test('sign in, see the burst with its failures, open an event, retry its failed receivers, see them delivered', async () => {
    // A burst: notifications, some with receivers Yunxin keeps refusing
    // (server busy, retryable) and one unknown account, and a webhook route.
    emu.injectFaults({ kind: 'receiver-code', code: 102503, prefix: 'flaky' });
    const posted = [];
    for (let i = 0; i < 4; i++) {
      const body = notification(5, { prefix: `burst${i}-` });
      posted.push((await postEvent(relay.url, body, { wait: false })).id);
    }
    for (let i = 0; i < 2; i++) {
      const body = notification(4, { prefix: `team${i}-` });
      body.receiver_ids.push(`flaky${i}-a`, `flaky${i}-b`, `ghost${i}`);
      posted.push((await postEvent(relay.url, body, { wait: false })).id);
    }
    const hook = await request(`${relay.url}/v1/hooks/deploys`, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${DEPLOY_SECRET}` },
      body: JSON.stringify({ to: ['ops0', 'ops1', 'ops2'], text: 'deploy finished' }),
    });
    assert.equal(hook.status, 202, hook.text);
    posted.push(hook.json.event_id);
    const summaries = await settled(posted);
    const failing = posted.filter((id) => summaries[id].state === 'completed_with_failures');
    assert.equal(failing.length, 2, 'the two events with flaky receivers ended with failures');
    const target = failing[0];

    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    try {
      await page.goto(`${relay.url}/dashboard`);
      assert.equal(new URL(page.url()).pathname, '/dashboard/login');
      // Keyboard only: the token field is focused, Enter submits.
      await page.getByLabel('Status token').fill(TOKEN);
      await page.keyboard.press('Enter');
      await page.waitForURL(`${relay.url}/dashboard`);

      // Every event of the burst is listed, the failures say so.
      for (const id of posted) assert.ok(await page.getByRole('link', { name: id }).isVisible(), id);
      const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: target }) });
      await assertText(row, /Completed with failures/);
      await assertText(row, /4 of 7 delivered/);
      await assertText(row, /3 failed/);
      const hookRow = page.getByRole('row').filter({ has: page.getByRole('link', { name: hook.json.event_id }) });
      await assertText(hookRow, /deploys/);
      await page.screenshot({ path: new URL('list.png', SHOTS).pathname, fullPage: true });
      // The first Tab reaches the skip link: the page starts keyboard-first.
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');

      // The filter (a GET form) narrows to the failures.
      await page.getByLabel('State').selectOption('completed_with_failures');
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL(/state=completed_with_failures/);
      const links = await page.locator('tbody a').allTextContents();
      assert.deepEqual(links.sort(), [...failing].sort());
      // And by route.
      await page.goto(`${relay.url}/dashboard?route=deploys`);
      assert.deepEqual(await page.locator('tbody a').allTextContents(), [hook.json.event_id]);

      // The event: each receiver's outcome, the attempts, the last error.
      await page.goto(`${relay.url}/dashboard?state=completed_with_failures`);
      await page.getByRole('link', { name: target }).focus();
      await page.keyboard.press('Enter');
      await page.waitForURL(`${relay.url}${eventPath(target)}`);
      await assertText(page.locator('#failed'), /Failed \(3\)/);
      const failedRows = page.locator('table[aria-labelledby="failed"] tbody tr');
      assert.equal(await failedRows.count(), 3);
      await assertText(failedRows.filter({ hasText: /^ghost/ }), /102404/);
      await assertText(failedRows.filter({ hasText: 'flaky0-a' }), /102503/);
      await assertText(page.locator('#delivered'), /Delivered \(4\)/);
      const attempts = page.locator('table[aria-labelledby="attempts"] tbody tr');
      assert.ok((await attempts.count()) >= 2, 'the first call and its retries');
      const trace = (await attempts.first().locator('td').nth(2).textContent()).trim();
      assert.match(trace, /^[0-9a-f-]{36}$/);
      assert.ok(emu.requests().some((r) => r.traceId === trace), 'the trace id is the one Yunxin got');
      await assertText(page.getByRole('note', { name: 'Last error' }), /102503/);
      await page.screenshot({ path: new URL('event.png', SHOTS).pathname, fullPage: true });

      // Retry the failed receivers (the retryable ones): they are delivered, once.
      emu.clearFaults();
      const sentBefore = emu.requests().length;
      await page.getByRole('button', { name: /Retry failed receivers/ }).focus();
      await page.keyboard.press('Enter');
      await page.waitForURL(`${relay.url}${eventPath(target)}`);
      await assertText(page.getByRole('status'), /2 receivers sent again/);
      await eventually(
        async () => {
          await page.reload();
          return (await page.locator('.facts').textContent()).includes('Completed with failures') &&
            (await page.locator('#delivered').textContent()).includes('Delivered (6)');
        },
        { ms: 30_000, what: 'the retried receivers delivered' },
      );
      // The flash showed once.
      assert.equal(await page.getByRole('status').count(), 0);
      await assertText(page.locator('#failed'), /Failed \(1\)/);
      const retried = emu.requests().slice(sentBefore);
      assert.equal(retried.length, 1);
      assert.equal(retried[0].receiverCount, 2, 'only the two retryable failures went again');
      const counts = emu.deliveryCounts();
      for (const receiver of ['flaky0-a', 'flaky0-b', 'team0-0', 'team0-1', 'team0-2', 'team0-3']) {
        assert.equal(counts[receiver], 1, `${receiver} notified once`);
      }
      assert.equal(counts.ghost0, undefined);
      await page.screenshot({ path: new URL('event-after-retry.png', SHOTS).pathname, fullPage: true });

      // The quota chart: an SVG with a title, the quota line, bars; the same data as a table.
      await page.getByRole('link', { name: 'Quota' }).click();
      await page.waitForURL(`${relay.url}/dashboard/quota`);
      const chart = page.getByRole('img', { name: 'Upstream calls per minute, last hour' });
      assert.ok(await chart.isVisible());
      assert.ok((await chart.locator('rect').count()) >= 1, 'bars');
      await assertText(chart, /quota 60 \/ min/);
      await assertText(chart, /calls per minute/);
      assert.equal(await page.locator('details table tbody tr').count(), 60);
      const calls = emu.requests().length;
      await assertText(page.locator('.facts'), new RegExp(`Calls, last hour${calls}`));
      await page.screenshot({ path: new URL('quota.png', SHOTS).pathname, fullPage: true });

      // Sign out: the cookie is gone, the dashboard asks to sign in again.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(`${relay.url}/dashboard/login`);
      await page.goto(`${relay.url}/dashboard`);
      assert.equal(new URL(page.url()).pathname, '/dashboard/login');
    } finally {
      await context.close();
    }
  });

  test('a retry without its CSRF token, or with a wrong one, is refused (403) and sends nothing', async () => {
    emu.injectFaults({ kind: 'receiver-code', code: 102503, prefix: 'flaky' });
    const body = notification(2, { prefix: 'csrf' });
    body.receiver_ids.push('flaky-csrf');
    const { id } = await postEvent(relay.url, body, { wait: false });
    await settled([id]);
    emu.clearFaults();

    const cookie = await signIn();
    // The retry form's token (the page's second form: the first is Sign out).
    const tokenOf = async (session) => {
      const page = await http(eventPath(id), { headers: { cookie: session } });
      return [...page.text.matchAll(/name="csrf" value="([0-9a-f]{64})"/g)].map((m) => m[1]);
    };
    const [logout, mine] = await tokenOf(cookie);
    assert.ok(mine, 'the event page carries the retry form');
    const [, anotherSession] = await tokenOf(await signIn());
    assert.notEqual(anotherSession, mine);

    const sent = emu.requests().length;
    const post = (form) => http(`${eventPath(id)}/retry`, { method: 'POST', headers: { cookie }, body: form });
    for (const form of ['scope=all', 'csrf=&scope=all', `csrf=${'0'.repeat(64)}&scope=all`, `csrf=${anotherSession}&scope=all`, `csrf=${mine.slice(0, 63)}&scope=all`]) {
      const response = await post(form);
      assert.equal(response.status, 403, form);
      assert.match(response.text, /CSRF token is missing or wrong/);
    }
    // The sign-out form's token (valid in this session, for another form) does not retry either.
    assert.equal((await post(`csrf=${logout}&scope=all`)).status, 403);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(emu.requests().length, sent, 'nothing was sent');
    const { json } = await api(`/v1/events/${encodeURIComponent(id)}`);
    assert.deepEqual(json.failed.map((f) => f.account_id), ['flaky-csrf']);

    // With its token it goes.
    const accepted = await post(`csrf=${mine}&scope=retryable`);
    assert.equal(accepted.status, 303);
    assert.equal(accepted.headers.get('location'), eventPath(id));
    await eventually(async () => (await api(`/v1/events/${encodeURIComponent(id)}`)).json.state === 'delivered', { ms: 30_000, what: 'delivered after the retry' });
    assert.equal(emu.deliveryCounts()['flaky-csrf'], 1);
  });
});

describe('silences in the browser', () => {
  test('make a silence on the Silences page, see an event silenced, end it, see the next one sent; a form without its token is refused', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    // Each a new event (its body's hash is its id): a redelivery would get its first decision back.
    const deploy = (text) =>
      request(`${relay.url}/v1/hooks/deploys`, {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${DEPLOY_SECRET}` },
        body: JSON.stringify({ to: ['quiet0'], text, n: randomBytes(4).toString('hex') }),
      });
    try {
      await page.goto(`${relay.url}/dashboard/silences`);
      await page.getByLabel('Status token').fill(TOKEN);
      await page.keyboard.press('Enter');
      await page.waitForURL(`${relay.url}/dashboard/silences`);
      await assertText(page.locator('main'), /No silence is active/);

      // A matcher that does not parse: refused on the page, naming the field.
      await page.getByLabel('Route').selectOption('deploys');
      await page.getByLabel('Matcher').fill('payload.(');
      await page.getByRole('button', { name: 'Silence' }).click();
      await assertText(page.getByRole('alert'), /matcher/);

      await page.getByLabel('Matcher').fill("payload.text == 'noisy'");
      await page.getByLabel('For').selectOption('30');
      await page.getByLabel('Comment').fill('maintenance <window>');
      await page.getByRole('button', { name: 'Silence' }).click();
      await page.waitForURL(`${relay.url}/dashboard/silences`);
      const row = page.getByRole('row').filter({ hasText: 'deploys' });
      await assertText(row, /payload\.text == 'noisy'/);
      await assertText(row, /maintenance <window>/);
      await page.screenshot({ path: new URL('silences.png', SHOTS).pathname, fullPage: true });

      const silenced = await deploy('noisy');
      assert.equal(silenced.status, 202, silenced.text);
      assert.equal(silenced.json.disposition.disposition, 'silenced');
      // Its event page says so.
      await page.goto(`${relay.url}${eventPath(silenced.json.event_id)}`);
      await assertText(page.locator('main'), /nothing was sent for it: silenced by silence s[0-9a-f]+/);

      // A form posted without its CSRF token ends nothing.
      const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
      const id = silenced.json.disposition.silence_id;
      const forged = await http(`/dashboard/silences/${id}/end`, { method: 'POST', headers: { cookie }, body: 'csrf=x' });
      assert.equal(forged.status, 403);

      await page.goto(`${relay.url}/dashboard/silences`);
      await page.getByRole('button', { name: `End silence ${id}` }).click();
      await page.waitForURL(`${relay.url}/dashboard/silences`);
      await assertText(page.locator('main'), /No silence is active/);
      const sent = await deploy('noisy');
      assert.equal(sent.status, 202, sent.text);
      assert.equal(sent.json.disposition, undefined, 'queued as usual');
      await eventually(() => emu.deliveries().some((d) => d.receiverId === 'quiet0'), { what: 'the event after the silence ended' });
    } finally {
      await context.close();
    }
  });
});

describe('/metrics', () => {
  test('parses as the Prometheus text format, and its counters match the emulator record after a burst', async () => {
    const before = await metrics();
    const requestsBefore = emu.requests().length;
    const deliveriesBefore = emu.deliveries().length;

    emu.injectFaults({ kind: 'receiver-code', code: 102503, prefix: 'flaky', count: 1 });
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const body = notification(3, { prefix: `metrics${i}-` });
      if (i === 0) body.receiver_ids.push('flaky-m'); // fails once, then goes in a follow-up call
      if (i === 1) body.receiver_ids.push('ghost-m'); // fails for good
      ids.push((await postEvent(relay.url, body, { wait: false })).id);
    }
    await settled(ids);
    // The index hears of the last changes just after the events' records.
    const after = await eventually(
      async () => {
        const now = await metrics();
        const calls = total(now, 'yunxin_edge_upstream_calls_total') - total(before, 'yunxin_edge_upstream_calls_total');
        return calls === emu.requests().length - requestsBefore ? now : null;
      },
      { ms: 10_000, what: 'the upstream call counters caught up' },
    );
    const delta = (name, labels) => total(after, name, labels) - total(before, name, labels);
    const sent = emu.requests().slice(requestsBefore);

    const { families } = after;
    for (const name of ['events_accepted', 'receivers_delivered', 'receivers_failed', 'attempts_retried', 'upstream_calls']) {
      assert.equal(families[`yunxin_edge_${name}_total`]?.type, 'COUNTER', name);
    }
    for (const name of ['upstream_latency', 'queue_lag', 'pacer_wait']) {
      assert.equal(families[`yunxin_edge_${name}_seconds`]?.type, 'HISTOGRAM', name);
    }
    assert.equal(families.yunxin_edge_rate_per_minute.type, 'GAUGE');
    assert.equal(families.yunxin_edge_rate_per_minute.metrics[0].value, '60');
    assert.match(families.yunxin_edge_events_accepted_total.help, /Events accepted/);

    assert.equal(delta('yunxin_edge_events_accepted_total', { route: '-' }), 5);
    assert.equal(delta('yunxin_edge_upstream_calls_total'), sent.length);
    assert.equal(sent.length, 6, 'five calls and one follow-up');
    assert.equal(delta('yunxin_edge_upstream_calls_total', { code: '200' }), sent.filter((r) => r.code === 200).length);
    const whole = sent.filter((r) => r.code === 200 && r.delivered === r.receiverCount).length;
    assert.equal(delta('yunxin_edge_upstream_calls_total', { outcome: 'delivered' }), whole);
    assert.equal(delta('yunxin_edge_upstream_calls_total', { outcome: 'partial' }), sent.length - whole);
    assert.equal(delta('yunxin_edge_receivers_delivered_total', { route: '-' }), emu.deliveries().length - deliveriesBefore);
    assert.equal(emu.deliveries().length - deliveriesBefore, 16);
    assert.equal(delta('yunxin_edge_receivers_failed_total', { route: '-', code: '102404' }), 1, 'ghost-m');
    assert.equal(delta('yunxin_edge_attempts_retried_total', { route: '-' }), 1, 'the follow-up for flaky-m');

    // The latency histogram counted every call, in cumulative buckets up to +Inf.
    const endpoint = emu.url;
    const count = (m) => total(m, 'yunxin_edge_upstream_latency_seconds_count', { endpoint });
    assert.equal(count(after) - count(before), sent.length);
    const buckets = after.series.yunxin_edge_upstream_latency_seconds_bucket.metrics.filter((m) => m.labels.endpoint === endpoint);
    assert.deepEqual(buckets.map((b) => b.labels.le), ['0.01', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
    const cumulative = buckets.map((b) => Number(b.value));
    assert.deepEqual(cumulative, [...cumulative].sort((a, b) => a - b));
    assert.equal(cumulative.at(-1), count(after));
    assert.ok(total(after, 'yunxin_edge_upstream_latency_seconds_sum', { endpoint }) >= 0);
    // The endpoint's health: up, its calls in the last hour.
    assert.equal(total(after, 'yunxin_edge_endpoint_healthy', { endpoint }), 1);
    assert.ok(total(after, 'yunxin_edge_endpoint_calls_last_hour', { endpoint }) >= sent.length);
    // Queue lag and pacer waits: one observation per queued call at least.
    assert.ok(total(after, 'yunxin_edge_queue_lag_seconds_count') - total(before, 'yunxin_edge_queue_lag_seconds_count') >= 5);
  });
});

/** A cookie with its signature's last hex digit changed. */
function flipLast(cookie) {
  return cookie.slice(0, -1) + (cookie.endsWith('0') ? '1' : '0');
}

async function assertText(locator, pattern) {
  const text = (await locator.first().textContent()) ?? '';
  assert.match(text.replace(/\s+/g, ' '), pattern);
}
