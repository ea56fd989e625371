#!/usr/bin/env node
// Sends one signed sample event to the relay, then follows it on the status
// API until every receiver has its result, and prints the report:
//   node scripts/send-sample.mjs [relay-url]     (default http://127.0.0.1:8787)
// The secrets are read from .dev.vars (see .dev.vars.example).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { webhookHeaders } from './lib/webhook.mjs';

const relayUrl = (process.argv[2] ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
const devVars = (path) =>
  Object.fromEntries(
    readFileSync(new URL(path, import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).trim()]),
  );
const vars = devVars('../.dev.vars');
// With several secrets (rotation), senders sign with the first.
const secret = vars.WEBHOOK_SECRET.split(/\s+/)[0];

// 1,200 receivers (three Yunxin calls), two of them unknown to Yunxin.
const receivers = Array.from({ length: 1198 }, (_, i) => `user${i}`).concat(['ghost-carol', 'ghost-dave']);
const body = JSON.stringify({
  sender_id: 'ops-bot',
  receiver_ids: receivers,
  content: { type: 'deploy', service: 'api', status: 'finished' },
  push_config: { push_content: 'Deploy finished' },
});
const signed = webhookHeaders(body, { secret });
const id = signed['webhook-id'];

const accepted = await fetch(`${relayUrl}/v1/notifications`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...signed },
  body,
});
console.log(`POST ${relayUrl}/v1/notifications → HTTP ${accepted.status}`);
console.log(JSON.stringify(await accepted.json(), null, 2));
if (accepted.status !== 202) process.exit(1);

// The status API takes the bearer token.
async function status() {
  const response = await fetch(`${relayUrl}/v1/events/${id}`, {
    headers: { authorization: `Bearer ${vars.STATUS_TOKEN}` },
  });
  return response.json();
}
let report = await status();
for (let tries = 0; report.state === 'pending' && tries < 300; tries++) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  report = await status();
}
console.log(`GET ${relayUrl}/v1/events/${id} → state ${report.state}`);
console.log(
  JSON.stringify(
    { ...report, delivered: `${report.delivered?.length} receivers: ${report.delivered?.slice(0, 3).join(', ')}, …` },
    null,
    2,
  ),
);
const accounted = (report.delivered?.length ?? 0) + (report.failed?.length ?? 0);
if (report.state !== 'completed_with_failures' || accounted !== receivers.length) {
  console.error(`expected every one of ${receivers.length} receivers to have a result, got ${accounted}`);
  process.exit(1);
}

// A GitHub push to the default branch, as GitHub sends it (signed with
// GitHub's own library), through the example route `github-push`.
const { sign } = await import('@octokit/webhooks-methods');
const push = readFileSync(new URL('../examples/routes/payloads/github-push.json', import.meta.url), 'utf8');
const hook = await fetch(`${relayUrl}/v1/hooks/github-push`, {
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    prefer: 'wait',
    'x-github-event': 'push',
    'x-github-delivery': randomUUID(),
    'x-hub-signature-256': await sign(vars.GITHUB_WEBHOOK_SECRET, push),
  },
  body: push,
});
const pushed = await hook.json();
console.log(`POST ${relayUrl}/v1/hooks/github-push → HTTP ${hook.status}, state ${pushed.state}`);
console.log(`  delivered to ${pushed.delivered?.join(', ')}`);
if (hook.status !== 200 || pushed.state !== 'delivered') {
  console.error(JSON.stringify(pushed, null, 2));
  process.exit(1);
}
