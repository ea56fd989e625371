// Signing in Node: the npm package (js/pkg, the Rust core as WebAssembly) against the
// few lines of JavaScript a user would write with node:crypto, side by side in one
// process. Each variant runs a fixed number of calls per round; rounds alternate
// between the variants (A B C, C B A, ...) and the median round is reported, so that a
// burst of load on the shared machine hits every variant alike.
//
//   node bench/signing.mjs [--quick]     prints one JSON object on stdout
//
// Bounded: ROUNDS × variants × CALLS calls, nothing else.
import { createHash, randomBytes } from 'node:crypto';
import * as crypto from 'node:crypto';
import { checksum, signHeaders } from '../js/pkg/node.mjs';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 9;
const CALLS = quick ? 20_000 : 200_000;

// The inputs the Rust bench uses: a 12-hex-character secret, a 32-hex nonce and a
// 10-digit CurTime, 54 bytes, one SHA-1 block.
const APP_KEY = 'bench-app-key-0123456789abcdef';
const APP_SECRET = 'a1b2c3d4e5f6';
const NONCE = '0123456789abcdef0123456789abcdef';
const CUR_TIME = '1795745094';
const credentials = { appKey: APP_KEY, appSecret: APP_SECRET };

// What a user writes: the baseline.
function jsChecksum(secret, nonce, curTime) {
  return createHash('sha1').update(secret + nonce + curTime).digest('hex');
}
function jsSignHeaders({ appKey, appSecret }) {
  const nonce = randomBytes(16).toString('hex');
  const curTime = String(Math.floor(Date.now() / 1000));
  return { AppKey: appKey, Nonce: nonce, CurTime: curTime, CheckSum: jsChecksum(appSecret, nonce, curTime) };
}
// Node ≥ 20.12 also has a one-shot crypto.hash(), cheaper than createHash per call.
const oneShot = typeof crypto.hash === 'function' ? (s, n, t) => crypto.hash('sha1', s + n + t, 'hex') : undefined;

// Same answers, or the comparison means nothing.
const expected = jsChecksum(APP_SECRET, NONCE, CUR_TIME);
if (checksum(APP_SECRET, NONCE, CUR_TIME) !== expected) throw new Error('wasm checksum differs from node:crypto');
if (oneShot && oneShot(APP_SECRET, NONCE, CUR_TIME) !== expected) throw new Error('crypto.hash differs');
const fixed = signHeaders(credentials, { nonce: NONCE, now: Number(CUR_TIME) * 1000 });
if (fixed.CheckSum !== expected || fixed.Nonce !== NONCE || fixed.CurTime !== CUR_TIME) {
  throw new Error(`signHeaders answered ${JSON.stringify(fixed)}`);
}

const groups = {
  checksum: {
    'node:crypto createHash': () => jsChecksum(APP_SECRET, NONCE, CUR_TIME),
    'wasm checksum': () => checksum(APP_SECRET, NONCE, CUR_TIME),
    ...(oneShot ? { 'node:crypto hash()': () => oneShot(APP_SECRET, NONCE, CUR_TIME) } : {}),
  },
  // Fresh random nonce and the clock, as every real call.
  headers: {
    'node:crypto createHash': () => jsSignHeaders(credentials),
    'wasm signHeaders': () => signHeaders(credentials),
  },
};

let sink = 0;
function round(fn) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) {
    const out = fn();
    sink += typeof out === 'string' ? out.length : out.CheckSum.length;
  }
  return Number(process.hrtime.bigint() - started);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const result = {};
for (const [group, variants] of Object.entries(groups)) {
  const names = Object.keys(variants);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) round(variants[name]); // warm-up: JIT, wasm tier-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    for (const name of order) times[name].push(round(variants[name]));
  }
  result[group] = Object.fromEntries(
    names.map((n) => {
      const ns = median(times[n]) / CALLS;
      return [n, { ns_per_call: ns, per_second: 1e9 / ns, rounds: ROUNDS, calls_per_round: CALLS }];
    }),
  );
}
if (sink === 0) throw new Error('nothing was computed');
process.stdout.write(`${JSON.stringify(result)}\n`);
