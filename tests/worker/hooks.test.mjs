// Webhook routes end to end: `POST /v1/hooks/{route}` on the built Worker in
// workerd (Miniflare), the Yunxin emulator on loopback, the shipped example
// routes (examples/routes), and every verification scheme signed the way its
// sender signs (provider libraries, or node:crypto where only the algorithm
// is documented; see hook-senders.mjs).
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, postEvent, notification, request, startRelay } from './harness.mjs';
import {
  basicHeaders,
  bearerHeaders,
  ed25519Headers,
  ed25519Pair,
  githubHeaders,
  hmacSha1Headers,
  postHook,
  standardWebhooksHeaders,
  stripeHeaders,
  svixHeaders,
  unixNow,
  whsec,
  yunxinHeaders,
} from './hook-senders.mjs';

const EXAMPLES = new URL('../../examples/routes/', import.meta.url);
const exampleRoutes = JSON.parse(readFileSync(new URL('routes.json', EXAMPLES), 'utf8'));
const exampleGroups = JSON.parse(readFileSync(new URL('groups.json', EXAMPLES), 'utf8'));
/** A payload fixture's text, exactly as stored. */
const fixture = (name) => readFileSync(new URL(`payloads/${name}`, EXAMPLES), 'utf8');
/** A payload fixture, parsed (to change a field before sending). */
const fixtureJson = (name) => JSON.parse(fixture(name));

const STATUS_TOKEN = 'hooks-status-token';
const releasesKey = ed25519Pair();
const pk = [ed25519Pair(), ed25519Pair()];
const pkWrong = ed25519Pair();

// Every secret bound to the relay, by binding name: no answer or log line
// may ever contain one of these values.
const SECRETS = {
  // The examples' bindings.
  GITHUB_WEBHOOK_SECRET: 'gh-example-secret-仓库',
  STRIPE_WEBHOOK_SECRET: 'whsec_example_stripe_endpoint_secret',
  ALERTMANAGER_TOKEN: 'alertmanager-example-token-9f2c',
  RELEASES_WEBHOOK_PUBLIC_KEY: releasesKey.whpk,
  // Test routes: a current and a next secret for each scheme.
  T_SW: whsec('t-sw-current'),
  T_SW_NEXT: whsec('t-sw-next'),
  T_PK: pk[0].whpk,
  T_PK_NEXT: pk[1].whpk,
  T_GITHUB: 'github-current-secret',
  T_GITHUB_NEXT: 'github-next-secret-密钥',
  T_STRIPE: 'whsec_stripe_current_0a1b2c',
  T_STRIPE_NEXT: 'whsec_stripe_next_3d4e5f',
  T_HMAC: 'hmac-current-secret',
  T_HMAC_NEXT: 'hmac-next-secret',
  T_BEARER: 'bearer-current-token-7c1d',
  T_BEARER_NEXT: 'bearer-next-token-8e2f',
  T_BASIC: 'relay:basic-current-pässword',
  T_BASIC_NEXT: 'relay:basic-next-password',
  YUNXIN_APP_SECRET_NEXT: 'yunxin-next-app-secret',
  // A Standard Webhooks secret binding that holds something else.
  T_NOT_WHSEC: 'plain-text-secret-value-4b7e',
};

/** A test route: receivers and content from the payload (`to`, `text`). */
const testRoute = (verify, extra = {}) => ({
  verify,
  sender_id: 'test-bot',
  receivers_from: 'payload.to',
  content: '{{ payload.text }}',
  ...extra,
});

const TEST_ROUTES = {
  't-sw': testRoute({ scheme: 'standard-webhooks', secrets: ['T_SW', 'T_SW_NEXT'] }),
  't-ed25519': testRoute({ scheme: 'standard-webhooks', secrets: ['T_PK', 'T_PK_NEXT'] }),
  't-github': testRoute({ scheme: 'github', secrets: ['T_GITHUB', 'T_GITHUB_NEXT'] }),
  't-stripe': testRoute({ scheme: 'stripe', secrets: ['T_STRIPE', 'T_STRIPE_NEXT'] }),
  't-hmac': testRoute({
    scheme: 'hmac',
    header: 'X-Signature',
    algorithm: 'sha1',
    encoding: 'base64',
    prefix: 'sha1=',
    timestamp_header: 'X-Timestamp',
    secrets: ['T_HMAC', 'T_HMAC_NEXT'],
  }),
  't-bearer': testRoute({ scheme: 'bearer', secrets: ['T_BEARER', 'T_BEARER_NEXT'] }),
  't-basic': testRoute({ scheme: 'basic', secrets: ['T_BASIC', 'T_BASIC_NEXT'] }),
  't-yunxin': testRoute({ scheme: 'yunxin-callback', secrets: ['YUNXIN_APP_SECRET', 'YUNXIN_APP_SECRET_NEXT'] }),
  // Receivers from three places at once.
  't-mixed': testRoute(
    { scheme: 'bearer', secrets: ['T_BEARER'] },
    { receivers: ['fixed_one'], receivers_from: 'payload.owners', groups: ['test-group'] },
  ),
  // What templates see besides the payload.
  't-context': testRoute(
    { scheme: 'bearer', secrets: ['T_BEARER'] },
    { content: "{{ route }}|{{ headers['x-request-source'] }}|{{ 'fresh' if (now - payload.sent_at) | abs < 60 else 'stale' }}" },
  ),
  // Misconfigured, each in a way Routes::parse cannot see.
  't-unset-secret': testRoute({ scheme: 'github', secrets: ['T_GITHUB', 'NOT_BOUND_ANYWHERE'] }),
  't-missing-group': testRoute({ scheme: 'bearer', secrets: ['T_BEARER'] }, { groups: ['no-such-group'] }),
  't-not-whsec': testRoute({ scheme: 'standard-webhooks', secrets: ['T_NOT_WHSEC'] }),
  't-unknown-filter': testRoute(
    { scheme: 'bearer', secrets: ['T_BEARER'] },
    { content: '{{ payload.text | no_such_filter }}' },
  ),
  't-unset-app-key': testRoute({ scheme: 'yunxin-callback', app_key: 'NOT_BOUND_APP_KEY' }),
};

const GROUPS = { ...exampleGroups, 'test-group': ['grp_a', 'grp_b'] };

/** `routes` without their digests, throttles and quiet hours. */
function withoutStormSettings(routes) {
  return Object.fromEntries(
    Object.entries(routes).map(([name, route]) => {
      const { digest, digest_content, digest_push_content, throttle, quiet_hours, ...plain } = route;
      return [name, plain];
    }),
  );
}

let emu;
let relay;

before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay({
    YUNXIN_BASE_URL: emu.url,
    YUNXIN_RATE_PER_MINUTE: '6000',
    RETRY_SCHEDULE_SECS: '1,1,1',
    STATUS_TOKEN,
    // An object binding, as a [vars.ROUTES] table gives (JSON text: see the misconfiguration tests).
    // The examples' renderings are checked on events sent at once: their
    // digests and throttles are tested below and in storm.test.mjs.
    ROUTES: { ...withoutStormSettings(exampleRoutes), ...TEST_ROUTES },
    GROUPS,
    ...SECRETS,
  });
});
after(async () => {
  await relay?.close();
  await emu?.close();
});
beforeEach(() => emu.reset());

let serial = 0;
/** A receiver id no other test uses (ids are at most 32 characters, lower case). */
const uniqueId = (prefix) => `${prefix}_${++serial}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(-32);

/** The emulator's deliveries as [receiver, content] pairs, sorted. */
const delivered = () =>
  emu
    .deliveries()
    .map((d) => [d.receiverId, d.content])
    .sort(([a], [b]) => a.localeCompare(b));

function assertNothingForwarded() {
  assert.deepEqual(emu.requests(), [], 'nothing may reach Yunxin');
}

function assertNoSecretIn(text) {
  for (const [binding, value] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(value), `the value of ${binding} leaked: ${text}`);
  }
  assert.ok(!text.includes(APP_SECRET), 'the app secret leaked');
}

function assertUnauthorized(result, route) {
  assert.equal(result.status, 401, result.text);
  assert.equal(result.json.error.code, 'unauthorized');
  assert.equal(result.json.error.route, route);
  assertNoSecretIn(result.text);
  assertNothingForwarded();
}

function assertMisconfigured(result, route, field) {
  assert.equal(result.status, 500, result.text);
  assert.equal(result.json.error.code, 'misconfigured');
  assert.equal(result.json.error.route, route);
  assert.equal(result.json.error.field, field);
  assertNoSecretIn(result.text);
  assertNothingForwarded();
}

/** A 200 from `Prefer: wait` that delivered exactly `receivers` (content `content`). */
function assertDelivered(result, receivers, content) {
  assert.equal(result.status, 200, result.text);
  assert.equal(result.json.state, 'delivered', result.text);
  assert.deepEqual([...result.json.delivered].sort(), [...receivers].sort());
  const expected = receivers.map((r) => [r.toLowerCase(), content]).sort(([a], [b]) => a.localeCompare(b));
  assert.deepEqual(delivered(), expected);
}

// ---------------------------------------------------------------------------
// Every scheme: valid, rotated, tampered, wrong secret, stale/future, missing.
// ---------------------------------------------------------------------------

const schemes = [
  {
    name: 'standard-webhooks v1 (standardwebhooks library)',
    route: 't-sw',
    keys: [SECRETS.T_SW, SECRETS.T_SW_NEXT],
    wrong: whsec('somebody-else'),
    sign: (body, key, skew) => standardWebhooksHeaders(body, { secret: key, timestamp: unixNow(skew) }),
    timestamped: true,
    required: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],
  },
  {
    name: 'standard-webhooks under Svix header names (svix library)',
    route: 't-sw',
    keys: [SECRETS.T_SW, SECRETS.T_SW_NEXT],
    wrong: whsec('somebody-else'),
    sign: (body, key, skew) => svixHeaders(body, { secret: key, timestamp: unixNow(skew) }),
    timestamped: true,
    required: ['svix-id', 'svix-timestamp', 'svix-signature'],
  },
  {
    name: 'standard-webhooks v1a (Ed25519 whpk_, node:crypto)',
    route: 't-ed25519',
    keys: pk,
    wrong: pkWrong,
    sign: (body, key, skew) => ed25519Headers(body, { privateKey: key.privateKey, timestamp: unixNow(skew) }),
    timestamped: true,
    required: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],
  },
  {
    name: 'github (@octokit/webhooks-methods)',
    route: 't-github',
    keys: [SECRETS.T_GITHUB, SECRETS.T_GITHUB_NEXT],
    wrong: 'github-wrong-secret',
    sign: (body, key) => githubHeaders(body, { secret: key }),
    timestamped: false,
    required: ['x-hub-signature-256'],
  },
  {
    name: 'stripe (stripe SDK generateTestHeaderString)',
    route: 't-stripe',
    keys: [SECRETS.T_STRIPE, SECRETS.T_STRIPE_NEXT],
    wrong: 'whsec_wrong',
    sign: (body, key, skew) => stripeHeaders(body, { secret: key, timestamp: unixNow(skew) }),
    timestamped: true,
    required: ['stripe-signature'],
  },
  {
    name: 'hmac sha1, base64, prefix, timestamp header (node:crypto)',
    route: 't-hmac',
    keys: [SECRETS.T_HMAC, SECRETS.T_HMAC_NEXT],
    wrong: 'hmac-wrong',
    sign: (body, key, skew) => hmacSha1Headers(body, { secret: key, timestamp: unixNow(skew) }),
    timestamped: true,
    required: ['x-signature', 'x-timestamp'],
  },
  {
    name: 'bearer',
    route: 't-bearer',
    keys: [SECRETS.T_BEARER, SECRETS.T_BEARER_NEXT],
    wrong: 'bearer-wrong',
    sign: (body, key) => bearerHeaders(body, { secret: key }),
    unsigned: true,
    required: ['authorization'],
  },
  {
    name: 'basic',
    route: 't-basic',
    keys: [SECRETS.T_BASIC, SECRETS.T_BASIC_NEXT],
    wrong: 'relay:wrong',
    sign: (body, key) => basicHeaders(body, { secret: key }),
    unsigned: true,
    required: ['authorization'],
  },
  {
    name: 'yunxin-callback (MD5 + SHA1 CheckSum, CurTime in ms, node:crypto)',
    route: 't-yunxin',
    keys: [APP_SECRET, SECRETS.YUNXIN_APP_SECRET_NEXT],
    wrong: 'not-the-app-secret',
    sign: (body, key, skew = 0) => yunxinHeaders(body, { appKey: APP_KEY, secret: key, curTime: Date.now() + skew * 1000 }),
    timestamped: true,
    required: ['AppKey', 'CurTime', 'MD5', 'CheckSum'],
  },
];

/** A payload for a test route: one fresh receiver and a text with CJK and emoji. */
function testPayload(prefix, text = `通知 ${prefix} ✅ 👩‍💻`) {
  const to = uniqueId(prefix);
  return { to, text, body: JSON.stringify({ to, text }) };
}

/** Drops the header `name` (any case) from `headers`. */
const without = (headers, name) =>
  Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== name.toLowerCase()));

for (const scheme of schemes) {
  describe(`scheme: ${scheme.name}`, () => {
    const send = async (body, key, { skew = 0, headers = (h) => h } = {}) =>
      postHook(relay.url, scheme.route, body, headers(await scheme.sign(body, key, skew)));

    test('a valid request is delivered: receiver and rendered content', async () => {
      const p = testPayload('valid');
      assertDelivered(await send(p.body, scheme.keys[0]), [p.to], p.text);
    });

    test('the second (rotated) secret is accepted too', async () => {
      const p = testPayload('rotated');
      assertDelivered(await send(p.body, scheme.keys[1]), [p.to], p.text);
    });

    test('the wrong secret → 401, nothing forwarded', async () => {
      const p = testPayload('wrong');
      assertUnauthorized(await send(p.body, scheme.wrong), scheme.route);
    });

    if (!scheme.unsigned) {
      test('a tampered body (signature of another body) → 401, nothing forwarded', async () => {
        const p = testPayload('tampered');
        const forged = JSON.stringify({ to: 'mallory', text: p.text });
        const headers = await scheme.sign(p.body, scheme.keys[0], 0);
        assertUnauthorized(await postHook(relay.url, scheme.route, forged, headers), scheme.route);
      });
    } else {
      test('another authorization scheme with the right secret → 401', async () => {
        const p = testPayload('scheme');
        const value = scheme.route === 't-bearer' ? `Token ${scheme.keys[0]}` : `Bearer ${scheme.keys[0]}`;
        assertUnauthorized(await postHook(relay.url, scheme.route, p.body, { authorization: value }), scheme.route);
      });
    }

    if (scheme.timestamped) {
      for (const skew of [-400, 400]) {
        test(`a timestamp ${skew < 0 ? 'too old' : 'in the future'} (${skew} s) → 401, nothing forwarded`, async () => {
          const p = testPayload('skew');
          assertUnauthorized(await send(p.body, scheme.keys[0], { skew }), scheme.route);
        });
      }
    }

    for (const header of scheme.required) {
      test(`without ${header} → 401, nothing forwarded`, async () => {
        const p = testPayload('missing');
        assertUnauthorized(await send(p.body, scheme.keys[0], { headers: (h) => without(h, header) }), scheme.route);
      });
    }
  });
}

describe('scheme details', () => {
  test('stripe: several v1 signatures in the header (Stripe rolling a secret), one of them good', async () => {
    const p = testPayload('stripe_multi');
    const { 'stripe-signature': header } = stripeHeaders(p.body, { secret: SECRETS.T_STRIPE });
    const [t, v1] = header.split(',');
    const both = `${t},v1=${'0'.repeat(64)},${v1}`;
    assertDelivered(await postHook(relay.url, 't-stripe', p.body, { 'stripe-signature': both }), [p.to], p.text);
  });

  test('yunxin-callback: another AppKey → 401; CurTime in seconds (not ms) → 401', async () => {
    const p = testPayload('yx_appkey');
    const other = yunxinHeaders(p.body, { appKey: 'another-app', secret: APP_SECRET });
    assertUnauthorized(await postHook(relay.url, 't-yunxin', p.body, other), 't-yunxin');
    const seconds = yunxinHeaders(p.body, { appKey: APP_KEY, secret: APP_SECRET, curTime: unixNow() });
    assertUnauthorized(await postHook(relay.url, 't-yunxin', p.body, seconds), 't-yunxin');
  });

  test('bearer: the scheme name in lower case is accepted', async () => {
    const p = testPayload('lower_bearer');
    const result = await postHook(relay.url, 't-bearer', p.body, { authorization: `bearer ${SECRETS.T_BEARER}` });
    assertDelivered(result, [p.to], p.text);
  });

  test('standard-webhooks: a v1a signature does not pass a whsec_ route, nor a v1 signature a whpk_ route', async () => {
    const p = testPayload('cross');
    const v1a = ed25519Headers(p.body, { privateKey: pk[0].privateKey });
    assertUnauthorized(await postHook(relay.url, 't-sw', p.body, v1a), 't-sw');
    const v1 = standardWebhooksHeaders(p.body, { secret: SECRETS.T_SW });
    assertUnauthorized(await postHook(relay.url, 't-ed25519', p.body, v1), 't-ed25519');
  });
});

// ---------------------------------------------------------------------------
// The shipped examples, with their payload fixtures.
// ---------------------------------------------------------------------------

const githubSecret = SECRETS.GITHUB_WEBHOOK_SECRET;
const members = (group) => exampleGroups[group];

/** Sends a GitHub event (a fixture's text, or a changed copy) to an example route. */
async function sendGithub(route, event, body, { delivery = randomUUID(), query } = {}) {
  const headers = await githubHeaders(body, { secret: githubSecret, event, delivery });
  return postHook(relay.url, route, body, headers, { query });
}

function assertSkipped(result) {
  assert.equal(result.status, 200, result.text);
  assert.equal(typeof result.json.skipped, 'string', result.text);
  assert.deepEqual(Object.keys(result.json), ['skipped']);
  assertNothingForwarded();
}

describe('example: github-push', () => {
  test('a push to the default branch names pusher, repository and commit count (CJK and emoji intact)', async () => {
    const result = await sendGithub('github-push', 'push', fixture('github-push.json'));
    const content = [
      '🚀 zhangwei 推送了 2 个提交到 octo-org/yunxin-edge（main）',
      '• a1b2c3d Webhook routes: GitHub, Stripe, Alertmanager 路由',
      '• 0d1a26e 修复：签名时间戳容差 ±300 s 🐛',
      'https://github.com/octo-org/yunxin-edge/compare/6113728f27ae...0d1a26e67d8f',
    ].join('\n');
    assertDelivered(result, members('dev-team'), content);
  });

  test('more than five commits: five listed, then an ellipsis', async () => {
    const push = fixtureJson('github-push.json');
    push.commits = Array.from({ length: 7 }, (_, i) => ({ ...push.commits[0], id: `${i}`.repeat(40), message: `提交 ${i}\n\nbody` }));
    const result = await sendGithub('github-push', 'push', JSON.stringify(push));
    assert.equal(result.status, 200, result.text);
    const [[, content]] = delivered();
    assert.match(content, /^🚀 zhangwei 推送了 7 个提交/);
    assert.equal(content.split('\n').filter((l) => l.startsWith('• ')).length, 5);
    assert.match(content, /• 4444444 提交 4\n…\nhttps:/);
  });

  test('GitHub’s ping, a push to another branch and a deleted branch are skipped (200, nothing sent)', async () => {
    assertSkipped(await sendGithub('github-push', 'ping', fixture('github-ping.json')));
    const feature = { ...fixtureJson('github-push.json'), ref: 'refs/heads/feature/x' };
    assertSkipped(await sendGithub('github-push', 'push', JSON.stringify(feature)));
    const deleted = { ...fixtureJson('github-push.json'), deleted: true, commits: [], head_commit: null };
    assertSkipped(await sendGithub('github-push', 'push', JSON.stringify(deleted)));
    // A push payload sent as another event type is not a push.
    assertSkipped(await sendGithub('github-push', 'create', fixture('github-push.json')));
  });

  test('the example secret is the one checked: another secret → 401', async () => {
    const body = fixture('github-push.json');
    const headers = await githubHeaders(body, { secret: 'not-the-github-secret' });
    assertUnauthorized(await postHook(relay.url, 'github-push', body, headers), 'github-push');
  });
});

describe('example: github-pr and github-ci', () => {
  test('a pull request opened reaches the reviewers', async () => {
    const result = await sendGithub('github-pr', 'pull_request', fixture('github-pull_request-opened.json'));
    const content = [
      '🔀 lina 发起了合并请求 octo-org/yunxin-edge#42：支持 Standard Webhooks v1a（Ed25519）签名 ✍️',
      'feature/ed25519 → main（+214 −17，6 个文件）',
      'https://github.com/octo-org/yunxin-edge/pull/42',
    ].join('\n');
    assertDelivered(result, members('reviewers'), content);
  });

  test('a pull request synchronized, closed, or opened as a draft is skipped', async () => {
    for (const change of [{ action: 'synchronize' }, { action: 'closed' }]) {
      const pr = { ...fixtureJson('github-pull_request-opened.json'), ...change };
      assertSkipped(await sendGithub('github-pr', 'pull_request', JSON.stringify(pr)));
    }
    const draft = fixtureJson('github-pull_request-opened.json');
    draft.pull_request.draft = true;
    assertSkipped(await sendGithub('github-pr', 'pull_request', JSON.stringify(draft)));
  });

  test('a failed workflow run reaches the team group', async () => {
    const result = await sendGithub('github-ci', 'workflow_run', fixture('github-workflow_run-failure.json'));
    const content = [
      '❌ 工作流「CI」#318 失败（failure）',
      '仓库：octo-org/yunxin-edge · 分支：main',
      '提交：0d1a26e 修复：签名时间戳容差 ±300 s 🐛（zhangwei）',
      'https://github.com/octo-org/yunxin-edge/actions/runs/11901234567',
    ].join('\n');
    assertDelivered(result, members('dev-team'), content);
  });

  test('a successful, cancelled or still running workflow is skipped', async () => {
    for (const [action, conclusion] of [
      ['completed', 'success'],
      ['completed', 'cancelled'],
      ['in_progress', null],
    ]) {
      const run = fixtureJson('github-workflow_run-failure.json');
      run.action = action;
      run.workflow_run.conclusion = conclusion;
      assertSkipped(await sendGithub('github-ci', 'workflow_run', JSON.stringify(run)));
    }
  });
});

/** A Stripe fixture with a fresh event id and receiver, signed with the example secret. */
function stripeEvent(name, change = (e) => e) {
  const event = fixtureJson(name);
  event.id = `evt_${randomUUID().replaceAll('-', '')}`;
  event.data.object.metadata.yunxin_account = uniqueId('buyer');
  change(event);
  const body = JSON.stringify(event);
  return { event, body, headers: () => stripeHeaders(body, { secret: SECRETS.STRIPE_WEBHOOK_SECRET }) };
}

describe('example: stripe', () => {
  test('payment_intent.succeeded → the customer’s account, content a JSON object', async () => {
    const { event, body, headers } = stripeEvent('stripe-payment_intent.succeeded.json');
    const result = await postHook(relay.url, 'stripe', body, headers());
    const account = event.data.object.metadata.yunxin_account;
    assert.equal(result.status, 200, result.text);
    assert.equal(result.json.event_id, `stripe:${event.id}`, 'Stripe’s event id is the idempotency key');
    assert.deepEqual(result.json.delivered, [account]);
    const [[receiver, content]] = delivered();
    assert.equal(receiver, account);
    assert.deepEqual(JSON.parse(content), {
      type: 'payment',
      event: 'payment_intent.succeeded',
      status: 'succeeded',
      payment_intent: 'pi_3QkR2sLkdIwHu7ix0Jq7dG4e',
      amount: '12800',
      currency: 'CNY',
      order: 'A-20261127-0042',
      message: '✅ 支付成功：128.00 CNY',
    });
  });

  test('payment_intent.payment_failed → the reason Stripe gives', async () => {
    const { event, body, headers } = stripeEvent('stripe-payment_intent.payment_failed.json');
    const result = await postHook(relay.url, 'stripe', body, headers());
    assert.equal(result.status, 200, result.text);
    const [[receiver, content]] = delivered();
    assert.equal(receiver, event.data.object.metadata.yunxin_account);
    const parsed = JSON.parse(content);
    assert.equal(parsed.status, 'failed');
    assert.equal(parsed.message, '⚠️ 支付失败：Your card has insufficient funds.');
  });

  test('Stripe retrying the same event (new timestamp and signature) notifies once', async () => {
    const { event, body, headers } = stripeEvent('stripe-payment_intent.succeeded.json');
    const first = await postHook(relay.url, 'stripe', body, headers());
    assert.equal(first.status, 200, first.text);
    const retry = await postHook(relay.url, 'stripe', body, stripeHeaders(body, { secret: SECRETS.STRIPE_WEBHOOK_SECRET, timestamp: unixNow(5) }));
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.json.event_id, `stripe:${event.id}`);
    assert.deepEqual(retry.json.delivered, [event.data.object.metadata.yunxin_account]);
    assert.equal(emu.deliveries().length, 1);
    assert.equal(emu.requests().length, 1);
  });

  test('other event types, and payments without a yunxin_account, are skipped', async () => {
    const created = stripeEvent('stripe-payment_intent.succeeded.json', (e) => (e.type = 'payment_intent.created'));
    assertSkipped(await postHook(relay.url, 'stripe', created.body, created.headers()));
    const anonymous = stripeEvent('stripe-payment_intent.succeeded.json', (e) => (e.data.object.metadata = {}));
    assertSkipped(await postHook(relay.url, 'stripe', anonymous.body, anonymous.headers()));
  });
});

describe('example: alertmanager', () => {
  const token = { authorization: `Bearer ${SECRETS.ALERTMANAGER_TOKEN}` };

  test('firing → the on-call group, each alert listed', async () => {
    const alert = fixtureJson('alertmanager-firing.json');
    alert.groupKey = `{}:{alertname="HighErrorRate",run="${randomUUID()}"}`; // a fresh event each run
    const result = await postHook(relay.url, 'alertmanager', JSON.stringify(alert), token);
    const content = [
      '🔥 告警触发 [FIRING:2] HighErrorRate',
      '• [critical] edge-sha-1:9100：上海节点 5xx 比例 12.5% 超过 5%',
      '• [critical] edge-bj-2:9100：北京节点 5xx 比例 7.1% 超过 5%',
      'http://alertmanager.example.com:9093',
    ].join('\n');
    assertDelivered(result, members('oncall'), content);
  });

  test('resolved → the on-call group', async () => {
    const alert = fixtureJson('alertmanager-resolved.json');
    alert.groupKey = `{}:{alertname="HighErrorRate",run="${randomUUID()}"}`;
    const result = await postHook(relay.url, 'alertmanager', JSON.stringify(alert), token);
    assert.equal(result.status, 200, result.text);
    const contents = delivered().map(([, c]) => c);
    assert.equal(contents.length, members('oncall').length);
    assert.match(contents[0], /^✅ 告警恢复 \[RESOLVED:2\] HighErrorRate\n/);
  });

  test('a large group (1000 alerts, 400 KB) renders within the template budget: ten listed', async () => {
    const alert = fixtureJson('alertmanager-firing.json');
    alert.alerts = Array.from({ length: 1000 }, (_, i) => ({ ...alert.alerts[i % 2], fingerprint: `${randomUUID()}` }));
    const result = await postHook(relay.url, 'alertmanager', JSON.stringify(alert), token);
    assert.equal(result.status, 200, result.text);
    const [[, content]] = delivered();
    assert.match(content, /^🔥 告警触发 \[FIRING:1000\] HighErrorRate\n/);
    assert.equal(content.split('\n').filter((l) => l.startsWith('• ')).length, 10);
  });

  test('its digest: a firing and a resolved group in one window → one summary to the on-call group', async () => {
    // The example route as shipped, its 300 s window made 2 s.
    const route = { ...exampleRoutes.alertmanager, digest: { ...exampleRoutes.alertmanager.digest, window_secs: 2 } };
    const digesting = await startRelay({ YUNXIN_BASE_URL: emu.url, YUNXIN_RATE_PER_MINUTE: '6000', ROUTES: { alertmanager: route }, GROUPS, ...SECRETS });
    try {
      for (const file of ['alertmanager-firing.json', 'alertmanager-resolved.json']) {
        const alert = fixtureJson(file);
        alert.groupKey = `{}:{alertname="HighErrorRate",run="${randomUUID()}"}`;
        const result = await postHook(digesting.url, 'alertmanager', JSON.stringify(alert), token);
        assert.equal(result.status, 202, result.text);
        assert.equal(result.json.disposition.disposition, 'digested');
      }
      const contents = await eventually(() => {
        const got = delivered();
        return got.length === members('oncall').length ? got.map(([, c]) => c) : null;
      }, { what: 'the digest', ms: 20_000 });
      assert.match(contents[0], /^📋 告警汇总：2 条通知/);
      assert.match(contents[0], /🔥 HighErrorRate ×2/);
      assert.match(contents[0], /✅ HighErrorRate ×2 已恢复/);
    } finally {
      await digesting.close();
    }
  });

  test('without the bearer token → 401', async () => {
    assertUnauthorized(await postHook(relay.url, 'alertmanager', fixture('alertmanager-firing.json'), {}), 'alertmanager');
  });
});

describe('example: releases (Standard Webhooks v1a)', () => {
  test('a release signed with Ed25519 reaches the team', async () => {
    const body = fixture('releases-published.json');
    const result = await postHook(relay.url, 'releases', body, ed25519Headers(body, { privateKey: releasesKey.privateKey }));
    const content = ['📦 yunxin-edge v0.4.0 已发布到 production（王芳）', 'Webhook 路由正式上线 🎉', 'https://deploy.example.com/releases/yunxin-edge/v0.4.0'].join('\n');
    assertDelivered(result, members('dev-team'), content);
  });

  test('another type is skipped; another key → 401', async () => {
    const other = JSON.stringify({ ...fixtureJson('releases-published.json'), type: 'release.rolled_back' });
    assertSkipped(await postHook(relay.url, 'releases', other, ed25519Headers(other, { privateKey: releasesKey.privateKey })));
    const body = fixture('releases-published.json');
    assertUnauthorized(await postHook(relay.url, 'releases', body, ed25519Headers(body, { privateKey: pkWrong.privateKey })), 'releases');
  });
});

describe('example: yunxin-kefu (Yunxin 抄送)', () => {
  const signed = (body) => yunxinHeaders(body, { appKey: APP_KEY, secret: APP_SECRET });

  test('a message to the customer-service account reaches the service group as a JSON object', async () => {
    const message = fixtureJson('yunxin-message.json');
    message.msgidServer = `${Date.now()}${++serial}`;
    const body = JSON.stringify(message);
    const result = await postHook(relay.url, 'yunxin-kefu', body, signed(body));
    assert.equal(result.status, 200, result.text);
    assert.equal(result.json.event_id, `yunxin-kefu:${message.msgidServer}`);
    const got = delivered();
    assert.deepEqual(
      got.map(([r]) => r),
      [...members('customer-service')].sort(),
    );
    assert.deepEqual(JSON.parse(got[0][1]), {
      type: 'kefu_message',
      from: 'user_8801',
      nick: '小李',
      msg_type: 'TEXT',
      text: '你好，我的订单 A-20261127-0042 还没发货 📦',
      msgid: message.msgidServer,
      sent_at: '1795770845123',
    });
  });

  test('the console’s empty {} check (signed) answers 200 and sends nothing', async () => {
    for (const body of ['{}', fixture('yunxin-console-check.json')]) {
      assertSkipped(await postHook(relay.url, 'yunxin-kefu', body, signed(body)));
    }
  });

  test('a login event, a team message and a message to someone else are skipped', async () => {
    const base = fixtureJson('yunxin-message.json');
    for (const change of [{ eventType: '2', accid: 'user_8801' }, { convType: 'TEAM' }, { to: 'user_9902' }, { eventType: 1, to: 'x' }]) {
      const body = JSON.stringify({ ...base, ...change });
      assertSkipped(await postHook(relay.url, 'yunxin-kefu', body, signed(body)));
    }
  });

  test('eventType given as a number (as some 抄送 send it) still matches', async () => {
    const message = { ...fixtureJson('yunxin-message.json'), eventType: 1, msgidServer: `${Date.now()}${++serial}` };
    const body = JSON.stringify(message);
    const result = await postHook(relay.url, 'yunxin-kefu', body, signed(body));
    assert.equal(result.status, 200, result.text);
    assert.equal(emu.deliveries().length, members('customer-service').length);
  });
});

/**
 * The bindings wrangler makes of a wrangler.toml holding `toml` and a
 * .dev.vars holding `devVars`, in a scratch directory.
 */
function wranglerBindings(toml, devVars) {
  const dir = mkdtempSync(join(tmpdir(), 'hooks-config-'));
  try {
    writeFileSync(join(dir, 'index.js'), 'export default {};\n');
    writeFileSync(join(dir, 'wrangler.toml'), `name = "routes-example"\nmain = "index.js"\ncompatibility_date = "2026-04-01"\n\n[vars]\n\n${toml}`);
    if (devVars !== undefined) writeFileSync(join(dir, '.dev.vars'), devVars);
    const config = unstable_readConfig({ config: join(dir, 'wrangler.toml') });
    const { workerOptions } = unstable_getMiniflareWorkerOptions(join(dir, 'wrangler.toml'));
    return { vars: config.vars, bindings: workerOptions.bindings };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The .dev.vars lines examples/routes/README.md tells to write: backtick-quoted JSON. */
const devVarsText = () => `ROUTES=\`${readFileSync(new URL('routes.json', EXAMPLES), 'utf8')}\`\nGROUPS=\`${readFileSync(new URL('groups.json', EXAMPLES), 'utf8')}\`\n`;

describe('the examples as configuration', () => {
  test('every example route and group is here, and each group a route names exists', () => {
    assert.deepEqual(Object.keys(exampleRoutes).sort(), ['alertmanager', 'github-ci', 'github-pr', 'github-push', 'releases', 'stripe', 'yunxin-kefu']);
    for (const route of Object.values(exampleRoutes)) {
      for (const group of route.groups ?? []) assert.ok(exampleGroups[group], `group ${group} is in groups.json`);
    }
  });

  test('wrangler.vars.toml ([vars.ROUTES] and [vars.GROUPS] tables) reads as routes.json and groups.json', () => {
    const { vars } = wranglerBindings(readFileSync(new URL('wrangler.vars.toml', EXAMPLES), 'utf8'));
    assert.deepEqual(vars.ROUTES, exampleRoutes);
    assert.deepEqual(vars.GROUPS, exampleGroups);
  });

  test('the .dev.vars form of the README (backtick-quoted JSON text) reads as routes.json and groups.json', () => {
    const { bindings } = wranglerBindings('', devVarsText());
    assert.equal(typeof bindings.ROUTES, 'string');
    assert.deepEqual(JSON.parse(bindings.ROUTES), exampleRoutes);
    assert.deepEqual(JSON.parse(bindings.GROUPS), exampleGroups);
  });
});

// ---------------------------------------------------------------------------
// Rendering: receivers, templates, limits.
// ---------------------------------------------------------------------------

describe('rendering', () => {
  const bearer = { authorization: `Bearer ${SECRETS.T_BEARER}` };

  test('receivers, receivers_from (a list, numbers as digits) and groups together; duplicates once', async () => {
    const owner = uniqueId('owner');
    const body = JSON.stringify({ owners: [owner, 10086, 'GRP_A'], text: 'mixed 混合 🧩' });
    const result = await postHook(relay.url, 't-mixed', body, bearer);
    assert.equal(result.status, 200, result.text);
    assert.deepEqual(result.json.delivered.sort(), ['10086', 'GRP_A', 'fixed_one', owner, 'grp_b'].sort());
    assert.deepEqual(
      delivered().map(([r]) => r),
      ['10086', 'fixed_one', 'grp_a', 'grp_b', owner].sort(),
    );
    assert.ok(delivered().every(([, c]) => c === 'mixed 混合 🧩'));
  });

  test('route, lower-cased headers and now are in the template context', async () => {
    const to = uniqueId('context');
    const body = JSON.stringify({ to, sent_at: unixNow() });
    const result = await postHook(relay.url, 't-context', body, { ...bearer, 'X-Request-Source': 'CI-Runner' });
    assertDelivered(result, [to], 't-context|CI-Runner|fresh');
  });

  test('CJK, emoji (ZWJ sequences, flags), and markup arrive exactly as sent, not HTML-escaped', async () => {
    const text = '部署完成 ✅ 👩‍💻 🇨🇳 <b>"a" & \'b\'</b> \\ \u00e9\u0301 𠮷';
    const p = testPayload('exact', text);
    assertDelivered(await postHook(relay.url, 't-bearer', p.body, bearer), [p.to], text);
  });

  test('content of exactly 4096 characters (CJK: 12288 bytes; emoji: astral) is delivered', async () => {
    for (const unit of ['字', '😀']) {
      emu.reset();
      const p = testPayload('limit', unit.repeat(4096));
      assertDelivered(await postHook(relay.url, 't-bearer', p.body, bearer), [p.to], p.text);
    }
  });

  test('content over 4096 characters after rendering → 422 naming the route and content, limit 4096', async () => {
    const p = testPayload('over', '字'.repeat(4097));
    const result = await postHook(relay.url, 't-bearer', p.body, bearer);
    assert.equal(result.status, 422, result.text);
    assert.equal(result.json.error.route, 't-bearer');
    assert.equal(result.json.error.field, 'content');
    assert.equal(result.json.error.limit, 4096);
    assertNothingForwarded();
    // Short in the payload, long once rendered: the push example lists commits.
    const push = fixtureJson('github-push.json');
    push.commits = push.commits.map((c) => ({ ...c, message: '长'.repeat(2100) }));
    const long = await sendGithub('github-push', 'push', JSON.stringify(push));
    assert.equal(long.status, 422, long.text);
    assert.deepEqual([long.json.error.route, long.json.error.field, long.json.error.limit], ['github-push', 'content', 4096]);
    assertNothingForwarded();
  });

  test('no receivers once rendered → 422 naming the route and receiver_ids', async () => {
    const result = await postHook(relay.url, 't-bearer', JSON.stringify({ text: 'to nobody' }), bearer);
    assert.equal(result.status, 422, result.text);
    assert.equal(result.json.error.route, 't-bearer');
    assert.equal(result.json.error.field, 'receiver_ids');
    assertNothingForwarded();
  });

  test('a verified body that is not JSON → 400 naming the route', async () => {
    const body = 'payload=%7B%7D'; // GitHub's form encoding, if chosen in its settings
    const result = await postHook(relay.url, 't-github', body, await githubHeaders(body, { secret: SECRETS.T_GITHUB }));
    assert.equal(result.status, 400, result.text);
    assert.equal(result.json.error.route, 't-github');
    assertNothingForwarded();
  });
});

// ---------------------------------------------------------------------------
// Delivery: once per id, dry runs, the queued path.
// ---------------------------------------------------------------------------

/** Hex SHA-256 of a body, the default event key of an unsigned delivery id. */
function sha256(body) {
  return createHash('sha256').update(body).digest('hex');
}

describe('delivery', () => {
  test('the same GitHub delivery (same X-GitHub-Delivery, same body) twice, in parallel and later → one notification per receiver', async () => {
    // A run of its own: the body's hash is the event key, and the fixture is sent elsewhere too.
    const run = fixtureJson('github-workflow_run-failure.json');
    run.workflow_run.id = Date.now();
    const body = JSON.stringify(run);
    const delivery = randomUUID();
    const parallel = await Promise.all([1, 2].map(() => sendGithub('github-ci', 'workflow_run', body, { delivery })));
    const later = await sendGithub('github-ci', 'workflow_run', body, { delivery });
    for (const result of [...parallel, later]) {
      assert.equal(result.status, 200, result.text);
      // X-GitHub-Delivery is not signed: the body's hash is the key.
      assert.equal(result.json.event_id, `github-ci:sha256:${sha256(body)}`);
    }
    const counts = emu.deliveryCounts();
    assert.deepEqual(Object.keys(counts).sort(), [...members('dev-team')].sort());
    assert.ok(Object.values(counts).every((n) => n === 1), JSON.stringify(counts));
  });

  test('the same webhook-id with another body (both signed) → 409, the new body is not sent', async () => {
    const id = `msg_${randomUUID()}`;
    const p = testPayload('conflict');
    const first = await postHook(relay.url, 't-sw', p.body, standardWebhooksHeaders(p.body, { secret: SECRETS.T_SW, id }));
    assertDelivered(first, [p.to], p.text);
    emu.reset();
    const other = JSON.stringify({ to: p.to, text: 'another event, same id' });
    const second = await postHook(relay.url, 't-sw', other, standardWebhooksHeaders(other, { secret: SECRETS.T_SW, id }));
    assert.equal(second.status, 409, second.text);
    assert.equal(second.json.error.code, 'conflict');
    assertNothingForwarded();
  });

  test(
    'a captured GitHub request replayed with a new X-GitHub-Delivery does not notify again',
    async () => {
      const run = fixtureJson('github-workflow_run-failure.json');
      run.workflow_run.id = Date.now();
      const body = JSON.stringify(run);
      const captured = await githubHeaders(body, { secret: githubSecret, event: 'workflow_run' });
      const first = await postHook(relay.url, 'github-ci', body, captured);
      assert.equal(first.status, 200, first.text);
      const replay = await postHook(relay.url, 'github-ci', body, { ...captured, 'x-github-delivery': randomUUID() });
      assert.ok(replay.status < 300, replay.text);
      assert.equal(emu.deliveries().length, members('dev-team').length, 'each receiver notified once');
    },
  );

  test('?dry_run=1 returns the notification and sends nothing; the event is not recorded', async () => {
    // A push of its own: the body's hash is the event key, and the fixture is sent elsewhere too.
    const push = fixtureJson('github-push.json');
    push.after = randomUUID().replaceAll('-', '');
    const body = JSON.stringify(push);
    const delivery = randomUUID();
    const dry = await sendGithub('github-push', 'push', body, { delivery, query: '?dry_run=1' });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.dry_run, true);
    assert.equal(dry.json.event_id, `github-push:sha256:${sha256(body)}`);
    assert.equal(dry.json.requests, 1);
    assert.deepEqual(dry.json.notification.receiver_ids, members('dev-team'));
    assert.equal(dry.json.notification.sender_id, 'github-bot');
    assert.match(dry.json.notification.content, /^🚀 zhangwei 推送了 2 个提交/);
    assert.deepEqual(dry.json.notification.push_config, {
      push_content: 'yunxin-edge：zhangwei 推送了 2 个提交',
      push_payload: JSON.stringify({ url: 'https://github.com/octo-org/yunxin-edge/compare/6113728f27ae...0d1a26e67d8f' }),
    });
    assertNothingForwarded();
    // The real delivery afterwards is new, not a replay of the dry run.
    const real = await sendGithub('github-push', 'push', body, { delivery });
    assert.equal(real.status, 200, real.text);
    assert.equal(emu.deliveries().length, members('dev-team').length);
  });

  test('a dry run is verified like a real request: a bad signature → 401', async () => {
    const body = fixture('github-push.json');
    const headers = await githubHeaders(body, { secret: 'not-the-secret' });
    assertUnauthorized(await postHook(relay.url, 'github-push', body, headers, { query: '?dry_run=1' }), 'github-push');
  });

  test('a dry run of an object content shows the object; a skipped event still answers skipped', async () => {
    const { body, headers } = stripeEvent('stripe-payment_intent.succeeded.json');
    const dry = await postHook(relay.url, 'stripe', body, headers(), { query: '?dry_run=1' });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.notification.content.message, '✅ 支付成功：128.00 CNY');
    const ping = fixture('github-ping.json');
    assertSkipped(await sendGithub('github-push', 'ping', ping, { query: '?dry_run=1' }));
  });

  test('queued by default: 202 {event_id, requests, status_url}, then delivered', async () => {
    const p = testPayload('queued');
    const headers = standardWebhooksHeaders(p.body, { secret: SECRETS.T_SW });
    const result = await postHook(relay.url, 't-sw', p.body, headers, { wait: false });
    assert.equal(result.status, 202, result.text);
    const id = `t-sw:${headers['webhook-id']}`;
    assert.deepEqual(Object.keys(result.json).sort(), ['event_id', 'requests', 'status_url']);
    assert.equal(result.json.event_id, id);
    assert.equal(result.json.requests, 1);
    const status = await eventually(
      async () => {
        const response = await fetch(`${relay.url}${result.json.status_url}`, { headers: { authorization: `Bearer ${STATUS_TOKEN}` } });
        const json = await response.json();
        return json.state && json.state !== 'pending' ? json : null;
      },
      { ms: 30_000, what: `${id} delivered by the queue` },
    );
    assert.equal(status.event_id, id);
    assert.deepEqual(status.delivered, [p.to]);
    assert.deepEqual(delivered(), [[p.to, p.text]]);
  });
});

// ---------------------------------------------------------------------------
// Bad requests and misconfiguration.
// ---------------------------------------------------------------------------

describe('bad requests', () => {
  test('an unknown route → 404; an empty route name → 404', async () => {
    for (const route of ['nope', '', 'github-push/extra']) {
      const result = await postHook(relay.url, route, '{}', {});
      assert.equal(result.status, 404, `${route}: ${result.text}`);
      assert.equal(result.json.error.code, 'not_found');
    }
  });

  test('GET on a route → 405 with Allow: POST', async () => {
    const response = await fetch(`${relay.url}/v1/hooks/github-push`);
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'POST');
  });

  test('a body over 1 MiB → 413, nothing forwarded', async () => {
    const p = testPayload('big', 'x'.repeat(1024 * 1024));
    const result = await postHook(relay.url, 't-bearer', p.body, { authorization: `Bearer ${SECRETS.T_BEARER}` }, { raw: true });
    assert.equal(result.status, 413, result.text);
    assertNothingForwarded();
  });

  test('/v1/notifications still works beside the routes', async () => {
    const result = await postEvent(relay.url, notification(2, { prefix: 'plain_' }));
    assert.equal(result.status, 200, result.text);
    assert.equal(emu.deliveries().length, 2);
  });
});

describe('misconfiguration → 500 naming the route and the field, never a secret', () => {
  const bearer = { authorization: `Bearer ${SECRETS.T_BEARER}` };

  test('a secret binding that is not set', async () => {
    const p = testPayload('unset');
    const result = await postHook(relay.url, 't-unset-secret', p.body, await githubHeaders(p.body, { secret: SECRETS.T_GITHUB }));
    assertMisconfigured(result, 't-unset-secret', 'verify.secrets');
    assert.match(result.json.error.message, /NOT_BOUND_ANYWHERE/, 'the binding is named');
  });

  test('a group that is not in GROUPS', async () => {
    const p = testPayload('nogroup');
    assertMisconfigured(await postHook(relay.url, 't-missing-group', p.body, bearer), 't-missing-group', 'groups[no-such-group]');
  });

  test(
    'a standard-webhooks secret binding that holds no whsec_/whpk_ key',
    async () => {
      const p = testPayload('notwhsec');
      const result = await postHook(relay.url, 't-not-whsec', p.body, standardWebhooksHeaders(p.body, { secret: SECRETS.T_SW }));
      assertMisconfigured(result, 't-not-whsec', 'verify.secrets');
    },
  );

  test(
    'a template using a filter that does not exist',
    async () => {
      const p = testPayload('nofilter');
      assertMisconfigured(await postHook(relay.url, 't-unknown-filter', p.body, bearer), 't-unknown-filter', 'content');
    },
  );

  test(
    'a yunxin-callback app_key binding that is not set',
    async () => {
      const p = testPayload('noappkey');
      const result = await postHook(relay.url, 't-unset-app-key', p.body, yunxinHeaders(p.body, { appKey: APP_KEY, secret: APP_SECRET }));
      assertMisconfigured(result, 't-unset-app-key', 'verify.app_key');
    },
  );

  describe('ROUTES that do not parse (a relay of their own)', () => {
    let broken;
    const BROKEN_ROUTES = {
      ok: testRoute({ scheme: 'bearer', secrets: ['T_BEARER'] }),
      'a-template': testRoute({ scheme: 'bearer', secrets: ['T_BEARER'] }, { content: '{{ payload.text ' }),
      'b-filter': testRoute({ scheme: 'bearer', secrets: ['T_BEARER'] }, { filter: 'payload.x ==' }),
      'c-scheme': testRoute({ scheme: 'gitlab', secrets: ['T_BEARER'] }),
      'd-no-secrets': testRoute({ scheme: 'github' }),
      'e-no-receivers': { verify: { scheme: 'bearer', secrets: ['T_BEARER'] }, sender_id: 'x', content: 'x' },
      'f-push-payload': testRoute({ scheme: 'bearer', secrets: ['T_BEARER'] }, { push_payload: { url: '{% if %}' } }),
    };
    before(async () => {
      broken = await startRelay({ YUNXIN_BASE_URL: emu.url, ROUTES: BROKEN_ROUTES, GROUPS, ...SECRETS });
    });
    after(() => broken?.close());

    test('the broken route → 500 naming it and the field; every problem is logged, no secret', async () => {
      const p = testPayload('broken');
      assertMisconfigured(await postHook(broken.url, 'a-template', p.body, bearer), 'a-template', 'content');
      const logged = broken.logs.filter((l) => l.includes('"routes"')).join('\n');
      for (const [route, field] of [
        ['a-template', 'content'],
        ['b-filter', 'filter'],
        ['c-scheme', 'verify'],
        ['d-no-secrets', 'verify.secrets'],
        ['e-no-receivers', 'receivers'],
        ['f-push-payload', 'push_payload.url'],
      ]) {
        assert.ok(logged.includes(`route \`${route}\`: \`${field}\``), `${route}/${field} logged in:\n${logged}`);
      }
      assertNoSecretIn(broken.logs.join('\n'));
    });

    test(
      'one broken route does not take the others down, and each names its own problem',
      async () => {
        const p = testPayload('sibling');
        assertDelivered(await postHook(broken.url, 'ok', p.body, bearer), [p.to], p.text);
        emu.reset();
        assertMisconfigured(await postHook(broken.url, 'b-filter', p.body, bearer), 'b-filter', 'filter');
      },
    );
  });

  /** Starts a relay with `bindings` (and every secret) for one test. */
  async function relayWith(t, bindings) {
    const other = await startRelay({ YUNXIN_BASE_URL: emu.url, ...SECRETS, ...bindings });
    t.after(() => other.close());
    return other;
  }
  const okRoute = { ok: testRoute({ scheme: 'bearer', secrets: ['T_BEARER'] }, { groups: ['test-group'] }) };

  test('ROUTES not set → 500 naming ROUTES', async (t) => {
    const other = await relayWith(t, { ROUTES: undefined });
    const result = await postHook(other.url, 'ok', testPayload('unset_routes').body, bearer);
    assert.equal(result.status, 500, result.text);
    assert.deepEqual([result.json.error.code, result.json.error.field], ['misconfigured', 'ROUTES']);
    assertNothingForwarded();
  });

  test(
    'ROUTES and GROUPS as JSON text (.dev.vars, a secret, a plain var) work like tables',
    async (t) => {
      // Exactly what wrangler makes of the .dev.vars lines in examples/routes/README.md.
      const { bindings } = wranglerBindings('', devVarsText());
      const other = await relayWith(t, { ROUTES: bindings.ROUTES, GROUPS: bindings.GROUPS, STATUS_TOKEN });
      const body = fixture('alertmanager-resolved.json');
      const result = await postHook(other.url, 'alertmanager', body, { authorization: `Bearer ${SECRETS.ALERTMANAGER_TOKEN}` });
      // The route as the JSON text has it, digest included: collected for its summary.
      assert.equal(result.status, 202, result.text);
      assert.equal(result.json.disposition.disposition, 'digested');
      const { json: status } = await request(`${other.url}${result.json.status_url}`, { method: 'GET', headers: { authorization: `Bearer ${STATUS_TOKEN}` } });
      assert.equal(status.state, 'held', JSON.stringify(status));
    },
  );

  test(
    'ROUTES text that is not JSON, GROUPS that is not an object → 500 naming the binding',
    async (t) => {
      const p = testPayload('bad_bindings');
      const notJson = await relayWith(t, { ROUTES: '{"ok": ' });
      const routes = await postHook(notJson.url, 'ok', p.body, bearer);
      assert.equal(routes.status, 500, routes.text);
      assert.equal(routes.json.error.field, 'ROUTES');
      assert.match(routes.json.error.message, /not JSON/);
      const array = await relayWith(t, { ROUTES: okRoute, GROUPS: ['not', 'an', 'object'] });
      const groups = await postHook(array.url, 'ok', p.body, bearer);
      assert.equal(groups.status, 500, groups.text);
      assert.deepEqual([groups.json.error.code, groups.json.error.field], ['misconfigured', 'GROUPS']);
      assertNothingForwarded();
    },
  );
});

test('no log line of the relay holds a secret value', () => {
  assert.ok(relay.logs.length > 0);
  assertNoSecretIn(relay.logs.join('\n'));
});
