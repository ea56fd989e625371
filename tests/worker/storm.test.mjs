// Alert storms end to end (issue 21), in workerd against the emulator:
// digests that turn a storm into one notification per window per receiver
// set and survive a hard restart mid-window, throttles that report who was
// held back, silences made, matched and expired, and quiet hours in a zone
// whose offset is not UTC's, both modes. Windows are seconds here where a
// deployment would have minutes.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, request, spawnRelay, startRelay } from './harness.mjs';

const TOKEN = 'storm-status-token';
const HOOK_TOKEN = 'storm-hook-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const base = {
  verify: { scheme: 'bearer', secrets: ['HOOK_TOKEN'] },
  sender_id: 'alert-bot',
  receivers_from: 'payload.to',
  content: '{{ payload.alert }}',
};
/** Hours and minutes in Asia/Kathmandu (UTC+05:45), `minutes` from now. */
function kathmandu(minutes) {
  const at = new Date(Date.now() + minutes * 60_000 + (5 * 60 + 45) * 60_000);
  return `${String(at.getUTCHours()).padStart(2, '0')}:${String(at.getUTCMinutes()).padStart(2, '0')}`;
}
const ROUTES = {
  // One digest per team per 3 s window, to the union of the events' receivers.
  alerts: {
    ...base,
    digest: { window_secs: 3, key: 'payload.team', max_events: 1000 },
    digest_content: '{{ key }}: {{ count }} alerts{% for e in events %} {{ e.alert }}{% endfor %}',
  },
  throttled: { ...base, throttle: { limit: 2, window_secs: 600, per: 'receiver' } },
  silenceable: base,
  'quiet-drop': { ...base, quiet_hours: { tz: 'Asia/Kathmandu', from: kathmandu(-5), to: kathmandu(30), mode: 'drop' } },
};
const bindings = (emu) => ({ YUNXIN_BASE_URL: emu.url, STATUS_TOKEN: TOKEN, HOOK_TOKEN, ROUTES, YUNXIN_RATE_PER_MINUTE: '6000', RETRY_SCHEDULE_SECS: '1' });

let emu;
let relay;
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay(bindings(emu));
});
after(async () => {
  await relay?.close();
  await emu?.close();
});
beforeEach(() => emu.reset());

const hook = (url, route, payload, { query = '' } = {}) =>
  request(`${url}/v1/hooks/${route}${query}`, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${HOOK_TOKEN}` },
    body: JSON.stringify(payload),
  });
const status = async (url, id) => (await request(`${url}/v1/events/${encodeURIComponent(id)}`, { method: 'GET', headers: auth })).json;

describe('digests', () => {
  test('a storm of 200 events in two teams: one notification per window per team, every event pointing at its digest', async () => {
    const started = Date.now();
    const ids = [];
    for (let i = 0; i < 200; i++) {
      const team = i % 2 ? 'db' : 'web';
      const answer = await hook(relay.url, 'alerts', { team, alert: `a${i}`, to: team === 'db' ? ['dba1', 'dba2'] : ['web1', `web-${i % 3}`] });
      assert.equal(answer.status, 202, answer.text);
      assert.equal(answer.json.disposition.disposition, 'digested');
      ids.push(answer.json.event_id);
      if (i % 40 === 39) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const windows = Math.ceil((Date.now() - started) / 3000) + 1;
    // Every event's status names its digest; every digest lists its events.
    const digests = new Map();
    for (const id of ids) {
      const held = await status(relay.url, id);
      assert.equal(held.state, 'held', JSON.stringify(held));
      assert.equal(held.disposition.disposition, 'digested');
      assert.match(held.digest_status_url, /^\/v1\/events\/alerts%3Adigest%3A/);
      digests.set(held.disposition.digest_id, held.digest_status_url);
    }
    const carried = [];
    for (const url of digests.values()) {
      const digest = await eventually(async () => {
        const answer = await request(`${relay.url}${url}`, { method: 'GET', headers: auth });
        return answer.status === 200 && answer.json.state === 'delivered' ? answer.json : null;
      }, { what: `digest ${url} delivered`, ms: 20_000 });
      carried.push(...digest.digest_of);
    }
    assert.deepEqual([...carried].sort(), [...ids].sort(), 'each event in exactly one digest');
    // The emulator saw one call per digest, each to its team's receivers only.
    const calls = emu.requests();
    assert.equal(calls.length, digests.size);
    assert.ok(digests.size <= 2 * windows, `${digests.size} digests for ${windows} windows`);
    const deliveries = emu.deliveries();
    for (const delivery of deliveries) {
      const team = delivery.content.split(':')[0];
      assert.ok(team === 'db' ? delivery.receiverId.startsWith('dba') : delivery.receiverId.startsWith('web'), JSON.stringify(delivery));
    }
    assert.ok(deliveries.some((d) => /^web: \d+ alerts a0 /.test(d.content)), 'the digest is rendered from its events');
  });

  test('a dry run says the event would be digested, and changes nothing', async () => {
    const dry = await hook(relay.url, 'alerts', { team: 'dry', alert: 'x', to: ['dry1'] }, { query: '?dry_run=1' });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.disposition.disposition, 'digested');
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.equal(emu.requests().length, 0);
  });

  test('nothing is lost when the runtime is killed mid-window and restarted', async (t) => {
    const persistTo = mkdtempSync(join(tmpdir(), 'yunxin-edge-storm-'));
    t.after(() => rmSync(persistTo, { recursive: true, force: true }));
    const routes = { alerts: { ...ROUTES.alerts, digest: { window_secs: 5, max_events: 1000 } } };
    const start = () => spawnRelay(t, { persistTo, bindings: { ...bindings(emu), ROUTES: routes } });
    const first = await start();
    const ids = [];
    for (let i = 0; i < 30; i++) {
      const answer = await hook(first.url, 'alerts', { team: 'ops', alert: `k${i}`, to: ['ops1'] });
      assert.equal(answer.status, 202, answer.text);
      ids.push(answer.json.event_id);
    }
    first.kill();
    assert.equal(emu.requests().length, 0, 'killed before the window closed');
    const second = await start();
    const delivered = await eventually(() => emu.deliveries().find((d) => d.receiverId === 'ops1'), { what: 'the digest after the restart', ms: 30_000 });
    assert.match(delivered.content, /30 alerts/);
    for (const id of ids) assert.equal((await status(second.url, id)).disposition.disposition, 'digested');
    assert.equal(emu.requests().length, 1);
  });
});

describe('throttles', () => {
  test('receivers over the limit are reported throttled with when the throttle opens, and counted in /metrics', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await hook(relay.url, 'throttled', { alert: `t${i}`, to: i < 3 ? ['amy'] : ['amy', 'ben'] }));
    assert.deepEqual(answers.map((a) => a.status), [202, 202, 202, 202]);
    assert.equal(answers[2].json.disposition.disposition, 'throttled', 'the third to amy is held');
    const held = answers[2].json.disposition.throttled[0];
    assert.equal(held.account_id, 'amy');
    assert.ok(held.opens_at_ms > Date.now() + 500_000, 'opens when the first send leaves the 600 s window');
    // The fourth: amy held, ben sent; its status lists both.
    const fourth = await eventually(async () => {
      const s = await status(relay.url, answers[3].json.event_id);
      return s.state === 'delivered' ? s : null;
    }, { what: 'the fourth event delivered' });
    assert.deepEqual(fourth.delivered, ['ben']);
    assert.equal(fourth.disposition.disposition, 'throttled');
    assert.deepEqual(fourth.disposition.throttled.map((t) => t.account_id), ['amy']);
    await eventually(() => emu.deliveries().length === 3, { what: 'three deliveries' });
    assert.deepEqual(emu.deliveries().map((d) => d.receiverId).sort(), ['amy', 'amy', 'ben']);
    const metrics = await (await fetch(`${relay.url}/metrics`, { headers: auth })).text();
    assert.match(metrics, /yunxin_edge_receivers_throttled_total\{route="throttled"\} 2/);
    assert.match(metrics, /yunxin_edge_events_held_total\{disposition="throttled",route="throttled"\} 2/);
  });
});

describe('silences', () => {
  test('made, matched (accepted, nothing sent), listed, expired with the clock, and deleted', async () => {
    const ends = Math.floor(Date.now() / 1000) + 3;
    const made = await request(`${relay.url}/v1/silences`, {
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ route: 'silenceable', matcher: "payload.alert == 'noisy'", ends_at: ends, comment: 'maintenance' }),
    });
    assert.equal(made.status, 201, made.text);
    const id = made.json.id;
    const silenced = await hook(relay.url, 'silenceable', { alert: 'noisy', to: ['sam'] });
    assert.equal(silenced.status, 202, silenced.text);
    assert.deepEqual([silenced.json.disposition.disposition, silenced.json.disposition.silence_id], ['silenced', id]);
    const other = await hook(relay.url, 'silenceable', { alert: 'quiet', to: ['sam'] });
    assert.equal(other.status, 202);
    await eventually(() => emu.deliveries().length === 1, { what: 'the unmatched event sent' });
    const listed = await request(`${relay.url}/v1/silences`, { method: 'GET', headers: auth });
    assert.deepEqual(listed.json.silences.map((s) => [s.id, s.route, s.comment, s.active]), [[id, 'silenceable', 'maintenance', true]]);
    // Expired: the same event is sent, without a deploy.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, ends * 1000 - Date.now()) + 500));
    const after = await hook(relay.url, 'silenceable', { alert: 'noisy', to: ['sam'], n: 2 });
    assert.equal(after.status, 202);
    await eventually(() => emu.deliveries().length === 2, { what: 'the event after the silence' });
    assert.equal((await request(`${relay.url}/v1/silences`, { method: 'GET', headers: auth })).json.silences.length, 0);

    const again = await request(`${relay.url}/v1/silences`, {
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ route: 'silenceable', matcher: 'true', ends_at: new Date(Date.now() + 3_600_000).toISOString() }),
    });
    assert.equal(again.status, 201, again.text);
    const deleted = await request(`${relay.url}/v1/silences/${again.json.id}`, { method: 'DELETE', headers: auth });
    assert.equal(deleted.status, 200);
    assert.equal((await request(`${relay.url}/v1/silences/${again.json.id}`, { method: 'DELETE', headers: auth })).status, 404);
  });

  test('bad silences are refused naming the field; without the token, 401', async () => {
    const post = (body, headers = auth) => request(`${relay.url}/v1/silences`, { headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const soon = Math.floor(Date.now() / 1000) + 600;
    for (const [body, field] of [
      [{ route: 'nope', matcher: 'true', ends_at: soon }, 'route'],
      [{ route: 'silenceable', matcher: 'payload.(', ends_at: soon }, 'matcher'],
      [{ route: 'silenceable', matcher: 'true', ends_at: 5 }, 'ends_at'],
      [{ route: 'silenceable', matcher: 'true', ends_at: 'tomorrow' }, 'ends_at'],
    ]) {
      const answer = await post(body);
      assert.ok([400, 404, 422].includes(answer.status), `${JSON.stringify(body)}: ${answer.text}`);
      assert.equal(answer.json.error.field, field, JSON.stringify(body));
    }
    assert.equal((await post({ route: 'silenceable', matcher: 'true', ends_at: soon }, {})).status, 401);
  });
});

describe('quiet hours in Asia/Kathmandu (UTC+05:45)', () => {
  test('drop: accepted, recorded as dropped naming the quiet hours, nothing sent', async () => {
    const answer = await hook(relay.url, 'quiet-drop', { alert: 'night', to: ['nia'] });
    assert.equal(answer.status, 202, answer.text);
    assert.equal(answer.json.disposition.disposition, 'dropped');
    assert.match(answer.json.disposition.quiet_hours, /Asia\/Kathmandu/);
    assert.equal((await status(relay.url, answer.json.event_id)).disposition.disposition, 'dropped');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(emu.requests().length, 0);
  });

  test('defer: held until the quiet hours end, then delivered', async (t) => {
    // Quiet until the next minute starts in Kathmandu (the one after, too
    // close to a minute's end to be sure of the first): deferred, then sent.
    const ahead = new Date().getUTCSeconds() > 45 ? 2 : 1;
    const quiet = { ...base, quiet_hours: { tz: 'Asia/Kathmandu', from: kathmandu(-5), to: kathmandu(ahead), mode: 'defer' } };
    const deferring = await startRelay({ ...bindings(emu), ROUTES: { 'quiet-defer': quiet } });
    t.after(() => deferring.close());
    const answer = await hook(deferring.url, 'quiet-defer', { alert: 'later', to: ['dee'] });
    assert.equal(answer.status, 202, answer.text);
    assert.equal(answer.json.disposition.disposition, 'deferred');
    const until = answer.json.disposition.until_ms;
    assert.ok(until > Date.now() && until <= Date.now() + ahead * 60_000 + 1000, `until ${until}`);
    assert.equal(emu.requests().length, 0);
    const delivered = await eventually(() => emu.deliveries().find((d) => d.receiverId === 'dee'), { what: 'the deferred event after the quiet hours', ms: 140_000 });
    assert.ok(delivered.at >= until - 1000, 'not before the quiet hours ended');
  });
});
