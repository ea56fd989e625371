// Planning + signing in Node: the npm package's `buildBatchRequests` (js/pkg, the Rust
// core as WebAssembly) against the same job written in plain JavaScript with node:crypto
// and JSON.stringify, side by side in one process, for 10,000 and 100,000 receivers.
//
//   node bench/npm-plan.mjs [--quick]      prints one JSON object on stdout
//
// Each variant builds the requests of one notification CALLS[n] times per round; rounds
// alternate between the variants (A B, B A, ...) after a warm-up round, and the median
// round is reported, so that a burst of load on the shared machine hits both alike.
// Bounded: (ROUNDS + 1) × 2 × CALLS[n] builds per size, nothing else.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { buildBatchRequests } from '../js/pkg/node.mjs';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 9;
const SIZES = [10_000, 100_000];
// Builds per round: a round of ≥ ~100 ms on this machine (fewer in --quick).
const CALLS = quick ? { 10_000: 3, 100_000: 1 } : { 10_000: 20, 100_000: 3 };

const credentials = { appKey: 'bench-app-key-0123456789abcdef', appSecret: 'a1b2c3d4e5f6' };
const BASE_URL = 'https://open.yunxinapi.com';
const BATCH_PATH = '/im/v2/custom_notification/batch';

// ---------------------------------------------------------------------------
// What a user writes instead: the same output shape, the same checks on what this
// notification has (sender, receivers, content), case-insensitive de-duplication, ≤ 500
// receivers per call, a fresh random nonce and trace id per call, SHA-1 CheckSum.
// ---------------------------------------------------------------------------
const MAX_PER_CALL = 500;
// Whitespace, control and Unicode format characters (category Cf), as the core refuses.
const BAD_ID = /[\s\p{Cc}\p{Cf}]/u;
function checkId(id, field) {
  if (typeof id !== 'string' || id.length === 0) throw new Error(`${field} is missing`);
  // Characters, not UTF-16 units (the limit is 32 characters).
  if (id.length > 32 && [...id].length > 32) throw new Error(`${field}: at most 32 characters`);
  if (BAD_ID.test(id)) throw new Error(`${field}: no whitespace, control or format characters`);
}

function plainBuildBatchRequests({ appKey, appSecret }, notification) {
  checkId(notification.sender_id, 'sender_id');
  const ids = notification.receiver_ids;
  if (!Array.isArray(ids) || ids.length === 0) throw new Error('receiver_ids: at least 1');
  const content = notification.content;
  if (typeof content !== 'string' || content.length === 0) throw new Error('content is missing');
  if (content.length > 4096 && [...content].length > 4096) throw new Error('content: at most 4096 characters');
  const seen = new Set();
  const unique = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    checkId(id, `receiver_ids[${i}]`);
    const key = id.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(id);
  }
  const requests = [];
  for (let start = 0, index = 0; start < unique.length; start += MAX_PER_CALL, index++) {
    const receiverIds = unique.slice(start, start + MAX_PER_CALL);
    const nonce = randomBytes(16).toString('hex');
    const curTime = String(Math.floor(Date.now() / 1000));
    const traceId = randomUUID();
    requests.push({
      index,
      method: 'POST',
      url: `${BASE_URL}${BATCH_PATH}`,
      headers: {
        AppKey: appKey,
        Nonce: nonce,
        CurTime: curTime,
        CheckSum: createHash('sha1').update(appSecret + nonce + curTime).digest('hex'),
        'X-custom-traceid': traceId,
        'Content-Type': 'application/json;charset=utf-8',
      },
      body: JSON.stringify({ ...notification, receiver_ids: receiverIds }),
      traceId,
      receiverIds,
    });
  }
  return requests;
}

// ---------------------------------------------------------------------------
const variants = {
  'plain JS (node:crypto + JSON.stringify)': (n) => plainBuildBatchRequests(credentials, n),
  'npm buildBatchRequests': (n) => buildBatchRequests(credentials, n),
};
const [PLAIN, OURS] = Object.keys(variants);

/** `sender_id` bot, receivers user0..user{n-1} with every 10th written in upper case (a duplicate-free mix). */
function notification(n) {
  return {
    sender_id: 'bot',
    receiver_ids: Array.from({ length: n }, (_, i) => (i % 10 ? `user${i}` : `USER${i}`)),
    content: 'deploy finished',
  };
}

// Same answers, or the comparison means nothing: the same calls, bodies and receivers, and
// signatures that check out (nonce, time and trace id differ, being random and the clock).
function sameOutput(n) {
  const input = notification(n);
  const input2 = { ...input, receiver_ids: [...input.receiver_ids, input.receiver_ids[1].toUpperCase()] };
  const a = variants[PLAIN](input2);
  const b = variants[OURS](input2);
  if (a.length !== b.length) throw new Error(`${n}: ${a.length} calls against ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    for (const key of ['index', 'method', 'url', 'body']) {
      if (a[i][key] !== b[i][key]) throw new Error(`${n}: call ${i} differs in ${key}`);
    }
    if (JSON.stringify(a[i].receiverIds) !== JSON.stringify(b[i].receiverIds)) throw new Error(`${n}: call ${i} receivers differ`);
    if (JSON.stringify(Object.keys(a[i].headers)) !== JSON.stringify(Object.keys(b[i].headers))) {
      throw new Error(`${n}: header names differ: ${Object.keys(b[i].headers)}`);
    }
    const h = b[i].headers;
    const expected = createHash('sha1').update(credentials.appSecret + h.Nonce + h.CurTime).digest('hex');
    if (h.CheckSum !== expected || h.AppKey !== credentials.appKey) throw new Error(`${n}: call ${i}: CheckSum does not check out`);
    if (h['X-custom-traceid'] !== b[i].traceId) throw new Error(`${n}: call ${i}: trace id header differs`);
  }
  return a.length;
}

let sink = 0;
function round(fn, input, calls) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) sink += fn(input).length;
  return Number(process.hrtime.bigint() - started);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const result = { rounds: ROUNDS, sizes: [] };
for (const n of SIZES) {
  const requests = sameOutput(n);
  const input = notification(n);
  const calls = CALLS[n];
  const names = Object.keys(variants);
  const times = Object.fromEntries(names.map((name) => [name, []]));
  for (const name of names) round(variants[name], input, calls); // warm-up: JIT, wasm tier-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    for (const name of order) times[name].push(round(variants[name], input, calls));
  }
  const variantsOut = Object.fromEntries(
    names.map((name) => {
      const ms = median(times[name]) / calls / 1e6;
      return [name, { ms_per_build: ms, builds_per_second: 1000 / ms, rounds_ms: times[name].map((t) => t / calls / 1e6) }];
    }),
  );
  result.sizes.push({ receivers: n, requests, builds_per_round: calls, baseline: PLAIN, ours: OURS, variants: variantsOut });
}
if (sink === 0) throw new Error('nothing was built');
process.stdout.write(`${JSON.stringify(result)}\n`);
