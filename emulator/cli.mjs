#!/usr/bin/env node
// Runs the Yunxin emulator as a separate process, e.g. for tests of a client written in
// another language:
//   node emulator/cli.mjs --host 127.0.0.1 --port 9100 --app-key K --app-secret S [--unknown-prefix ghost]
// stdout gets exactly one line once the port is open (scripts wait for it and read the
// URL from it); stderr gets one JSON line per request. The secret is never printed.

import { startEmulator } from './index.mjs';

const USAGE = `usage: node emulator/cli.mjs [--host 127.0.0.1] [--port 9100|0] --app-key KEY --app-secret SECRET
                          [--unknown-prefix ghost] [--max-skew-seconds 300] [--seed 1] [--allow-unknown-fields]
                          [--quota-per-minute N [--quota-block-seconds 60] [--quota-window sliding|fixed]]
  --app-key / --app-secret default to $YUNXIN_APP_KEY / $YUNXIN_APP_SECRET (prefer the environment for the secret).
  --port 0 picks a free port; the URL is printed as "yunxin-emulator listening on http://HOST:PORT".
  --unknown-prefix '' makes every account known.
  --quota-per-minute N answers 416 to an app's calls over N in 60 s and then blocks the app for
    --quota-block-seconds (default 60); --quota-window sliding (default: any 60 s) or fixed (clock minutes).`;

// Flags that take a value; the rest are booleans. Both "--flag value" and "--flag=value".
const VALUE_FLAGS = new Set([
  'host', 'port', 'app-key', 'app-secret', 'unknown-prefix', 'max-skew-seconds', 'seed',
  'quota-per-minute', 'quota-block-seconds', 'quota-window',
]);
const BOOL_FLAGS = new Set(['allow-unknown-fields', 'help']);

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(argv[i])}`);
    const [, name, inline] = m;
    if (BOOL_FLAGS.has(name)) {
      out[name] = true;
    } else if (VALUE_FLAGS.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      out[name] = value;
    } else {
      throw new Error(`unknown option --${name}`);
    }
  }
  return out;
}

function integer(name, value, fallback, { min = 0 } = {}) {
  if (value === undefined) return fallback;
  const what = min > 0 ? 'a positive integer' : 'a non-negative integer';
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new Error(`--${name} must be ${what}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

// --quota-per-minute turns the quota on; the other two quota flags only refine it.
function quota(args) {
  const perMinute = integer('quota-per-minute', args['quota-per-minute'], undefined, { min: 1 });
  const blockSeconds = integer('quota-block-seconds', args['quota-block-seconds'], 60);
  const window = args['quota-window'] ?? 'sliding';
  if (!['sliding', 'fixed'].includes(window)) throw new Error(`--quota-window must be sliding or fixed, got ${JSON.stringify(window)}`);
  if (perMinute === undefined) {
    for (const flag of ['quota-block-seconds', 'quota-window']) {
      if (args[flag] !== undefined) throw new Error(`--${flag} needs --quota-per-minute`);
    }
    return null;
  }
  return { perMinute, blockSeconds, window };
}

async function main() {
  let args;
  let options;
  try {
    args = parseArgs(process.argv.slice(2));
    if (args.help) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    const appKey = args['app-key'] ?? process.env.YUNXIN_APP_KEY;
    const appSecret = args['app-secret'] ?? process.env.YUNXIN_APP_SECRET;
    if (!appKey || !appSecret) throw new Error('an app key and app secret are required (--app-key/--app-secret or YUNXIN_APP_KEY/YUNXIN_APP_SECRET)');
    const prefix = args['unknown-prefix'] ?? 'ghost';
    options = {
      host: args.host ?? '127.0.0.1',
      port: integer('port', args.port, 0),
      apps: { [appKey]: appSecret },
      unknownAccounts: prefix === '' ? () => false : (id) => id.startsWith(prefix),
      maxSkewSeconds: integer('max-skew-seconds', args['max-skew-seconds'], 300),
      seed: integer('seed', args.seed, 1),
      allowUnknownFields: Boolean(args['allow-unknown-fields']),
      quota: quota(args),
      log: true,
    };
  } catch (err) {
    process.stderr.write(`yunxin-emulator: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }

  const emu = await startEmulator(options);
  process.stdout.write(`yunxin-emulator listening on ${emu.url}\n`);

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`yunxin-emulator: ${signal}, shutting down\n`);
    emu.close().then(() => process.exit(0));
    // Never hang on shutdown.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`yunxin-emulator: ${err?.stack ?? err}\n`);
  process.exit(1);
});
