#!/usr/bin/env node
// Sends one notification to a deployed (or local) Worker, signed with
// Standard Webhooks under WEBHOOK_SECRET, waits for its delivery (Prefer:
// wait) and prints the report:
//   WEBHOOK_SECRET=whsec_… node scripts/send-event.mjs <worker-url> --sender <account> --to <account>[,<account>…] [--text <text>]
// The secret is read from the environment only, and never printed.
import { parseArgs } from 'node:util';
import { webhookHeaders } from './lib/webhook.mjs';

const usage = 'usage: WEBHOOK_SECRET=whsec_… node scripts/send-event.mjs <worker-url> --sender <account> --to <account>[,<account>…] [--text <text>]';
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { sender: { type: 'string' }, to: { type: 'string' }, text: { type: 'string', default: 'hello from yunxin-edge' } },
  });
} catch (error) {
  console.error(`${error.message}\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
const secret = (process.env.WEBHOOK_SECRET ?? '').split(/\s+/)[0];
const problem = !positionals[0] ? 'the Worker URL is missing'
  : !values.sender ? '--sender is missing'
  : !values.to ? '--to is missing'
  : !secret.startsWith('whsec_') ? 'WEBHOOK_SECRET is not set to a whsec_… secret'
  : null;
if (problem) {
  console.error(`${problem}\n${usage}`);
  process.exit(2);
}

const url = `${positionals[0].replace(/\/$/, '')}/v1/notifications`;
const body = JSON.stringify({
  sender_id: values.sender,
  receiver_ids: values.to.split(',').map((id) => id.trim()).filter(Boolean),
  content: values.text,
});
const response = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', prefer: 'wait', ...webhookHeaders(body, { secret }) },
  body,
});
const text = await response.text();
console.log(`POST ${url} → HTTP ${response.status}`);
console.log(text);
process.exit(response.ok ? 0 : 1);
