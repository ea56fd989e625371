#!/usr/bin/env node
// `yunxin-edge`, the npm package's command-line tool (`npx yunxin-edge …`): the Rust
// tool's `send`, `sign` and `verify-callback` (cli/ in the repository) on this package's
// own bindings, with the same flags, environment variables, output and exit codes. The
// Rust tool's `render` and `check` need the webhook routes' template engine, which the
// package does not carry; they answer a usage error that says where they are.
//
// This file reads flags, files and the environment, prints, and picks the exit code.
// Everything else is the package's, that is the Rust core's: validation, signing, every
// retry and trace id (send() drives the core's delivery state machine), the report.
//
// Read it top-down: the commands and their flags (one table each, from which parsing
// and --help are made), main(), the three commands, then the shared parts: parsing,
// files, credentials, the package's errors, output.
//
// Exit codes: 0 ok, 1 a problem with the input (or a callback that fails verification),
// 2 a usage error, 3 `send` left receivers undelivered, 4 Yunxin refused `send`'s calls.
// Credentials come from YUNXIN_APP_KEY and YUNXIN_APP_SECRET only (a flag would show the
// secret in `ps` and shell history), and the secret is never printed.

import { readFileSync } from 'node:fs';

import {
  YunxinError,
  buildBatchRequests,
  resignRequest,
  send,
  signHeaders,
  validateNotification,
  verifyYunxinCallback,
} from './node.mjs';

const EXIT = Object.freeze({ ok: 0, input: 1, usage: 2, undelivered: 3, refused: 4 });
const APP_KEY = 'YUNXIN_APP_KEY';
const APP_SECRET = 'YUNXIN_APP_SECRET';
const SENDER_VARIABLE = 'YUNXIN_SENDER_ID';
const BASE_URL_VARIABLE = 'YUNXIN_BASE_URL';
// The longest delay a JavaScript timer keeps (the Rust tool takes any u64).
const MAX_TIMER_MS = 2 ** 31 - 1;
const VERSION = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).version;

// ---------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------

// A flag: `value` names what it takes (none: a switch); `list`: repeatable, values
// collected (`split`: each also split at commas); `number`: a whole number of at most
// `max`. Help texts are the Rust tool's.
const JSON_FLAG = {
  name: 'json',
  help: 'Print the answer as JSON, and errors as a JSON object on stdout, {"error": {"code", "message", "field"?, "limit"?}}, instead of a line on stderr',
};
const HELP_FLAG = { name: 'help', short: 'h', help: 'Print help' };

const COMMANDS = {
  send: {
    summary: 'Send a custom notification to any number of receivers and print what became of each one',
    about: `The receivers are split into calls of at most 500, each signed and sent with its own
trace id; failed calls and receivers that failed in a retryable way are sent again as the
core's delivery state machine decides (the same trace id for a repeated call, so Yunxin
takes it at most once). Progress goes to stderr; the report (every receiver once:
delivered, failed with Yunxin's code, unknown, not attempted) to stdout.

Credentials: YUNXIN_APP_KEY and YUNXIN_APP_SECRET from the environment. Exit codes: 0 every
receiver delivered, 3 some were not, 4 Yunxin refused the calls (414/403: check the key and
secret), 1 the notification is invalid (over a documented limit, say), 2 a usage error.

Example:
  export YUNXIN_APP_KEY=… YUNXIN_APP_SECRET=…
  npx yunxin-edge send --from ops-bot --to alice,bob --content '{"deploy":"ok"}'`,
    flags: [
      { name: 'to', value: 'IDS', list: true, split: true, help: "Receivers' account ids, comma-separated; repeat for more" },
      { name: 'to-file', value: 'FILE', help: "A file of receivers' account ids, one per line (blank lines are skipped); `-` reads them from stdin" },
      { name: 'content', value: 'TEXT', help: "The notification's content, at most 4096 characters: usually JSON text that your app's clients read" },
      { name: 'from', value: 'ACCOUNT', help: `The sending account [default: $${SENDER_VARIABLE}]` },
      {
        name: 'notification',
        value: 'FILE',
        help: "A whole notification as JSON, the batch call's body (`sender_id`, `receiver_ids`, `content`, `push_config`, …), instead of `--content` and `--from`; `--to` and `--to-file` add receivers to it. `-` reads it from stdin",
      },
      { name: 'base-url', value: 'URL', help: `Yunxin's base URL, e.g. https://open-sg.yunxinapi.com [default: $${BASE_URL_VARIABLE}, else https://open.yunxinapi.com]` },
      {
        name: 'event-id',
        value: 'ID',
        help: "Derive the calls' trace ids from this id: the same command run again with the same id is dropped by Yunxin as a repeat instead of notifying twice [default: random trace ids]",
      },
      { name: 'max-receivers', value: 'N', number: true, min: 1, default: 10_000, help: 'Refuse more unique receivers than this' },
      {
        name: 'retries',
        value: 'N',
        number: true,
        default: 2,
        help: "Retries of a call that failed in a retryable way (a 5xx, a timeout, Yunxin's 449/500/503/514, a receiver's retryable code)",
      },
      { name: 'retry-delay-ms', value: 'MS', number: true, max: MAX_TIMER_MS, default: 200, help: 'The wait before the first retry, doubled for each further one' },
      {
        name: 'max-wait-ms',
        value: 'MS',
        number: true,
        max: MAX_TIMER_MS,
        default: 60_000,
        help: "The longest wait for a retry: a call that must wait longer (a long Retry-After) ends failed (retryable) instead. The default waits out a rate limit's minute (Yunxin's 416)",
      },
      { name: 'timeout-ms', value: 'MS', number: true, min: 1, max: MAX_TIMER_MS, default: 10_000, help: 'How long one call may take, answer included' },
      { name: 'quiet', short: 'q', help: 'No progress lines on stderr' },
    ],
    run: sendCommand,
  },

  sign: {
    summary: 'Print the signed headers of a Yunxin server API call (AppKey, Nonce, CurTime, CheckSum), or whole signed requests for a notification',
    about: `Without \`--body\`, the four headers every Yunxin server API call needs (valid for five
minutes). With \`--body\`, the batch calls of that notification as \`send\` would make them
(headers, trace ids and bodies), as HTTP text, JSON (\`--json\`) or curl commands
(\`--curl\`). Credentials: YUNXIN_APP_KEY and YUNXIN_APP_SECRET from the environment.`,
    flags: [
      {
        name: 'body',
        value: 'FILE',
        help: 'A notification as JSON (the batch call\'s body, with any number of receivers): print its signed calls, not only the headers. `-` reads it from stdin',
      },
      { name: 'curl', requires: 'body', help: 'Print each call as a curl command (with `--body`; `--json` prints JSON whatever this says)' },
      { name: 'base-url', value: 'URL', requires: 'body', help: `Yunxin's base URL, for the calls' URL [default: $${BASE_URL_VARIABLE}, else https://open.yunxinapi.com]` },
      { name: 'event-id', value: 'ID', requires: 'body', help: "Derive the calls' trace ids from this id, as `send --event-id` does [default: random trace ids]" },
      { name: 'nonce', value: 'NONCE', help: 'Sign with this Nonce (at most 128 characters) [default: 32 random hex characters]' },
      // The package takes times in milliseconds, and as a safe integer.
      {
        name: 'cur-time',
        value: 'UNIX_SECS',
        number: true,
        max: Math.floor(Number.MAX_SAFE_INTEGER / 1000),
        help: 'Sign with this CurTime, in UNIX seconds [default: now]. Yunxin accepts a signature for five minutes',
      },
    ],
    run: signCommand,
  },

  'verify-callback': {
    summary: 'Verify a callback Yunxin POSTed to an app server (抄送 or 第三方回调): its AppKey, the body\'s MD5, CheckSum and the age of CurTime',
    about: `Exits 0 and prints \`ok\` when it verifies, 1 naming the check that failed otherwise.
Credentials: YUNXIN_APP_KEY and YUNXIN_APP_SECRET from the environment.`,
    flags: [
      { name: 'body', value: 'FILE', required: true, help: "The callback's raw body, byte for byte as received" },
      {
        name: 'header',
        value: 'NAME:VALUE',
        list: true,
        parse: header,
        help: 'A header of the callback, e.g. `CheckSum: 6a1f…`; repeat for AppKey, CurTime, MD5 and CheckSum. Names are case-insensitive',
      },
      {
        name: 'headers-file',
        value: 'FILE',
        help: "A file of the callback's headers, one `Name: value` a line, as a request head or a log shows them (a first `POST /path HTTP/1.1` line is skipped; reading stops at a blank line)",
      },
      { name: 'tolerance-secs', value: 'SECS', number: true, max: Math.floor(Number.MAX_SAFE_INTEGER / 1000), default: 300, help: 'How far CurTime may be from now, in seconds' },
      { name: 'now-ms', value: 'UNIX_MS', number: true, help: 'The time to check CurTime against, in UNIX milliseconds (to verify a callback kept from earlier) [default: now]' },
    ],
    run: verifyCommand,
  },
};

// The Rust tool's commands this one does not have, and why.
const RUST_ONLY = {
  render: 'renders webhook routes',
  check: 'checks webhook routes',
};
const RUST_ONLY_WHY =
  "the npm package does not include the routes' template engine: use the Rust tool (`cargo install --path cli` in a clone of the repository)";

const ABOUT = `Send NetEase Yunxin (网易云信) custom notifications, sign Yunxin requests and verify Yunxin
callbacks: the command-line tool of the yunxin-edge npm package.

It runs the package's own code (the yunxin-edge Rust core, compiled to WebAssembly), so that
what it accepts the relay accepts; it has the Rust tool's flags, output and exit codes. The
Rust tool's \`render\` and \`check\` (webhook routes) are not here: they need the routes'
template engine (cargo install --path cli).

Credentials come from the environment only: YUNXIN_APP_KEY and YUNXIN_APP_SECRET (never
echoed).

Exit codes: 0 ok, 1 a problem with the input (or a callback that fails verification), 2 a
usage error, 3 receivers left undelivered by \`send\`, 4 Yunxin refused \`send\`'s calls (a
wrong key or secret, most likely).`;

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

/**
 * Runs the tool on `args` and resolves to its exit code. Commands never print: they
 * return an {@link Output} or throw a {@link Failure}, so that every error of every
 * command is reported the same way.
 */
async function main(args) {
  // Before anything else, so that even an error in the arguments is JSON when asked.
  const json = jsonRequested(args);
  try {
    const { command, flags } = parseArguments(args);
    if (command === undefined) return EXIT.ok; // --help or --version, printed
    const output = await COMMANDS[command].run(flags, json);
    print(output.text !== undefined && !json ? output.text : pretty(output.json));
    if (output.exit === undefined) return EXIT.ok;
    complain(output.exit.why);
    return output.exit.code;
  } catch (error) {
    const failure = error instanceof Failure ? error : internal(error);
    failure.report(json);
    return failure.exit;
  }
}

/** What a command answers when it ran to the end. */
class Output {
  /** `json` for --json (and for data), `text` for a person, `exit` for bad news. */
  constructor(json, text) {
    this.json = json;
    this.text = text;
    this.exit = undefined;
  }

  /** The same answer, exiting with `code` and saying `why` on stderr. */
  exitWith(code, why) {
    this.exit = { code, why };
    return this;
  }
}

// ---------------------------------------------------------------------------
// send
// ---------------------------------------------------------------------------

async function sendCommand(flags, json) {
  const notification = notificationFromFlags(flags);
  const maxReceivers = flags['max-receivers'];
  // The core's checks before the credentials: a bad notification is exit 1 with or
  // without them, and `calls` is what progress lines count against.
  const { requestCount: calls } = fromPackage(() => validateNotification(notification, { maxReceivers }));
  const baseUrl = baseUrlFrom(flags['base-url']);
  const credentials = credentialsFromEnv();
  const progress = new Progress(flags.quiet, calls);
  const options = {
    baseUrl: baseUrl.url,
    eventId: flags['event-id'],
    maxReceivers,
    retries: flags.retries,
    retryDelayMs: flags['retry-delay-ms'],
    maxWaitMs: flags['max-wait-ms'],
    timeoutMs: flags['timeout-ms'],
    // One call at a time, as the Rust tool: progress in call order, and the app's
    // per-minute call quota spent no faster than Yunxin answers.
    concurrency: 1,
    onProgress: ({ last }) => progress.attempt(last),
  };
  const report = await fromPackage(() => send(credentials, notification, options), { baseUrl: baseUrl.source });
  return answer(report, calls, json);
}

// The notification from --notification, or from --content and --from, with the
// receivers of --to and --to-file added.
function notificationFromFlags(flags) {
  conflicts(flags, 'notification', ['content', 'from']);
  if (flags.notification === undefined && flags.content === undefined) throw missingArgument('content');
  const receivers = (flags.to ?? []).map((id) => id.trim());
  if (flags['to-file'] !== undefined) receivers.push(...receiversFile(flags['to-file']));

  if (flags.notification !== undefined) {
    const bytes = readInput(flags.notification, '--notification');
    // Bytes go to the core's own parser (errors with line and column, numbers kept to
    // the digit); receivers to add need the document as an object.
    return receivers.length === 0 ? bytes : withReceivers(bytes, receivers);
  }
  const sender = flags.from ?? (process.env[SENDER_VARIABLE] || undefined);
  if (sender === undefined) {
    throw Failure.usage('usage', `--from is required: the sending account (or set ${SENDER_VARIABLE})`, '--from');
  }
  if (receivers.length === 0) throw Failure.usage('usage', 'no receivers: give --to (comma-separated ids) or --to-file', '--to');
  return { sender_id: sender, receiver_ids: receivers, content: flags.content };
}

// The notification in `bytes` with `receivers` appended to its receiver_ids.
function withReceivers(bytes, receivers) {
  let document;
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    // The core says where the JSON breaks, in its own words.
    fromPackage(() => validateNotification(bytes));
    throw Failure.input('malformed_json', 'the notification is not JSON', 'notification');
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return document; // the core names it
  const ids = document.receiver_ids ?? [];
  return { ...document, receiver_ids: Array.isArray(ids) ? [...ids, ...receivers] : ids };
}

// The ids in a file, one per line; blank lines are skipped.
function receiversFile(path) {
  const bytes = readInput(path, '--to-file');
  const lines = [];
  let start = 0;
  for (let index = 0; start <= bytes.length; index++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    try {
      lines.push(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, end)));
    } catch {
      throw Failure.usage('usage', `--to-file \`${path}\`: line ${index + 1} is not UTF-8`, '--to-file');
    }
    start = end + 1;
  }
  return lines.map((line) => line.trim()).filter((id) => id !== '');
}

/** The report, for a person or as JSON, with the exit code it means. */
function answer(report, calls, json) {
  const output = new Output({ ...report, calls }, json ? undefined : reportText(report, calls));
  // A call refused as a whole with 414 (Yunxin's code for a bad AppKey or CheckSum,
  // among parameter errors the core has already ruled out) or 403 (no permission).
  // Per-receiver codes have six digits.
  const refused = report.failed.find((f) => f.error_code === 414 || f.error_code === 403);
  const undelivered = report.failed.length + report.unknown.length;
  if (refused !== undefined) {
    return output.exitWith(
      EXIT.refused,
      `Yunxin refused the call: ${refused.error_code} ${refused.error_msg}; check ${APP_KEY} and ${APP_SECRET}`,
    );
  }
  if (undelivered > 0) {
    const total = reportLength(report) - report.not_attempted.length;
    return output.exitWith(EXIT.undelivered, `${undelivered} of ${count(total, 'receiver')} not delivered`);
  }
  return output;
}

// Counts, then one line per receiver that was not delivered (the delivered ones could
// be thousands).
function reportText(report, calls) {
  const lines = [`delivered ${report.delivered.length} of ${count(reportLength(report), 'receiver')} in ${count(calls, 'call')}`];
  for (const f of report.failed) lines.push(`failed ${f.account_id}: ${f.error_code} ${f.error_msg}${f.retryable ? ' (retryable)' : ''}`);
  for (const u of report.unknown) lines.push(`unknown ${u.account_id}: ${u.reason}`);
  for (const n of report.not_attempted) lines.push(`not sent ${n.account_id}: ${n.reason}`);
  if (report.retry_after_secs !== undefined) lines.push(`retry the failed ones after ${report.retry_after_secs} s`);
  return lines.join('\n');
}

function reportLength(report) {
  return report.delivered.length + report.failed.length + report.unknown.length + report.not_attempted.length;
}

/**
 * Progress lines on stderr: one per attempt when the send has several calls, and one
 * for every attempt that is to be retried. What happened and what follows are the
 * core's words (send()'s onProgress passes on the outcome and the delivery's verdict).
 */
class Progress {
  constructor(quiet, calls) {
    this.quiet = quiet;
    this.calls = calls;
  }

  attempt({ call, attempt, receivers, outcome, recorded }) {
    const retryInMs = recorded.recorded === 'retry' ? Math.max(0, recorded.at_ms - Date.now()) : undefined;
    if (this.quiet || (this.calls === 1 && attempt === 1 && retryInMs === undefined)) return;
    let line = `call ${call + 1}/${this.calls} (${count(receivers, 'receiver')})`;
    if (attempt > 1) line += `, attempt ${attempt}`;
    line += `: ${whatHappened(outcome, receivers)}`;
    if (retryInMs !== undefined) line += `; again in ${duration(retryInMs)}`;
    else if (recorded.recorded === 'done' && recorded.gave_up) line += '; giving up';
    complain(line);
  }
}

// An outcome in a few words.
function whatHappened(outcome, receivers) {
  switch (outcome.kind) {
    case 'delivered':
      return 'delivered';
    case 'partial_failure': {
      const [first] = outcome.failed;
      const example = first === undefined ? '' : `, e.g. ${first.account_id}: ${first.error_code} ${first.error_msg}`;
      return `${outcome.failed.length} of ${count(receivers, 'receiver')} failed${example}`;
    }
    case 'rejected':
      return `refused: ${outcome.code} ${outcome.msg}`;
    case 'transport':
      return outcome.http_status === null ? `not sent: ${outcome.reason}` : outcome.reason;
    case 'answer_lost':
      return `answer lost: ${outcome.reason}`;
    default:
      return JSON.stringify(outcome);
  }
}

// ---------------------------------------------------------------------------
// sign
// ---------------------------------------------------------------------------

async function signCommand(flags) {
  // The notification is read before the credentials: a broken file is reported the
  // same with or without them.
  let notification;
  if (flags.body !== undefined) {
    notification = readInput(flags.body, '--body');
    fromPackage(() => validateNotification(notification));
  }
  const baseUrl = baseUrlFrom(flags['base-url']);
  const credentials = credentialsFromEnv();
  const now = flags['cur-time'] === undefined ? undefined : flags['cur-time'] * 1000;
  const sources = { baseUrl: baseUrl.source };

  if (notification === undefined) {
    const headers = fromPackage(() => signHeaders(credentials, { nonce: flags.nonce, now }), sources);
    return new Output(headers, headerLines(Object.entries(headers)));
  }
  let requests = fromPackage(() => buildBatchRequests(credentials, notification, { baseUrl: baseUrl.url, eventId: flags['event-id'], now }), sources);
  // A given Nonce signs every call (buildBatchRequests draws one per call).
  if (flags.nonce !== undefined) requests = fromPackage(() => requests.map((r) => resignRequest(credentials, r, { nonce: flags.nonce, now })));
  const json = {
    requests: requests.map((r) => ({ method: r.method, url: r.url, headers: r.headers, body: r.body, trace_id: r.traceId, receivers: r.receiverIds.length })),
  };
  return new Output(json, requests.map(flags.curl ? curl : httpText).join('\n\n'));
}

function headerLines(pairs) {
  return pairs.map(([name, value]) => `${name}: ${value}`).join('\n');
}

// The request as HTTP text: request line, headers, a blank line, body.
function httpText(request) {
  return [`${request.method} ${request.url}`, headerLines(Object.entries(request.headers)), '', request.body].join('\n');
}

// The request as a curl command for a POSIX shell.
function curl(request) {
  const parts = [`curl -sS -X ${request.method} ${shellQuote(request.url)}`];
  for (const [name, value] of Object.entries(request.headers)) parts.push(`  -H ${shellQuote(`${name}: ${value}`)}`);
  parts.push(`  --data-raw ${shellQuote(request.body)}`);
  return parts.join(' \\\n');
}

// Single-quoted for a POSIX shell: nothing in it is expanded.
function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

// ---------------------------------------------------------------------------
// verify-callback
// ---------------------------------------------------------------------------

async function verifyCommand(flags) {
  const body = readInput(flags.body, '--body');
  const pairs = [...(flags['headers-file'] === undefined ? [] : headersFile(flags['headers-file'])), ...(flags.header ?? [])];
  // A repeated header's values are joined with ", ", as a request joins them. No
  // prototype: a header may be called anything, `__proto__` too.
  const headers = Object.create(null);
  for (const [name, value] of pairs) headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
  const credentials = credentialsFromEnv();
  const options = { now: flags['now-ms'], toleranceMs: flags['tolerance-secs'] * 1000 };
  try {
    verifyYunxinCallback(credentials, headers, body, options);
  } catch (error) {
    if (error instanceof YunxinError && error.code === 'callback') throw rejected(error);
    // `json`: the callback is genuine and its body is not JSON, which is no concern here.
    if (!(error instanceof YunxinError && error.code === 'json')) {
      throw packageFailure(error, { now: '--now-ms', toleranceMs: '--tolerance-secs' });
    }
  }
  const appKey = headers.appkey ?? '';
  return new Output({ ok: true, app_key: appKey, cur_time: headers.curtime ?? '' }, `ok: a callback for app ${appKey}`);
}

// The core's words for each check (CallbackError in src/error.rs), as the codes and
// headers the Rust tool reports them with.
const CALLBACK_CHECKS = [
  [/^callback rejected: the (\S+) header is missing/, 'missing_header', (match) => match[1]],
  [/^callback rejected: AppKey does not match/, 'app_key_mismatch', () => 'AppKey'],
  [/^callback rejected: MD5 does not match/, 'md5_mismatch', () => 'MD5'],
  [/^callback rejected: CheckSum does not match/, 'checksum_mismatch', () => 'CheckSum'],
  [/^callback rejected: CurTime is not a whole number/, 'invalid_cur_time', () => 'CurTime'],
  [/^callback rejected: CurTime is \d+ ms away/, 'cur_time_skew', () => 'CurTime'],
];

// The failed check as a problem with the input (exit 1), naming the header.
function rejected(error) {
  for (const [pattern, code, header] of CALLBACK_CHECKS) {
    const match = pattern.exec(error.message);
    if (match) return Failure.input(code, error.message, header(match));
  }
  return Failure.input('callback_rejected', error.message);
}

// The `Name: value` lines of a file, up to the first blank line, after an optional
// request line.
function headersFile(path) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readInput(path, '--headers-file'));
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw Failure.usage('unreadable_file', `--headers-file \`${path}\` is not UTF-8`);
  }
  const pairs = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r+$/, '');
    if (index === 0 && line.includes(' HTTP/')) continue;
    if (line.trim() === '') break;
    try {
      pairs.push(header(line));
    } catch (reason) {
      throw Failure.usage('invalid_headers', `--headers-file \`${path}\` line ${index + 1}: ${reason.message}`);
    }
  }
  return pairs;
}

// A `name: value` header: the name lower-cased (names are case-insensitive), the value
// trimmed as HTTP does.
function header(text) {
  const colon = text.indexOf(':');
  if (colon === -1) throw new Error(`\`${text}\` is not \`name: value\``);
  const name = text.slice(0, colon).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new Error(`\`${name}\` is not a header name`);
  return [name.toLowerCase(), text.slice(colon + 1).trim()];
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

// The command and its flags (numbers as numbers, defaults filled in). Prints the help
// or the version and gives no command when asked for them.
function parseArguments(args) {
  const [first, ...rest] = args.filter((arg) => arg !== '--json');
  if (first === undefined) throw usageError(`a command is required: ${Object.keys(COMMANDS).join(', ')}`);
  if (first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) throw unknownCommand(topic);
    print(topic === undefined ? topHelp() : commandHelp(topic));
    return {};
  }
  if (first === '--version' || first === '-V') {
    print(`yunxin-edge ${VERSION}`);
    return {};
  }
  if (first.startsWith('-')) throw unexpectedArgument(first, ['json', 'help', 'version']);
  if (!Object.hasOwn(COMMANDS, first)) throw unknownCommand(first);
  const flags = parseFlags(first, args.slice(args.indexOf(first) + 1));
  return flags === undefined ? {} : { command: first, flags };
}

function parseFlags(command, args) {
  const specs = COMMANDS[command].flags;
  const flags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--json') continue;
    if (arg === '--help' || arg === '-h') {
      print(commandHelp(command));
      return undefined;
    }
    if (arg === '--') throw usageError(`unexpected argument '${args[i + 1] ?? '--'}' found`);
    const [, long, inline] = /^--([^=]+)(?:=([\s\S]*))?$/.exec(arg) ?? [];
    const spec = long !== undefined ? specs.find((s) => s.name === long) : specs.find((s) => s.short !== undefined && `-${s.short}` === arg);
    if (spec === undefined) throw unexpectedArgument(arg, specs.map((s) => s.name));
    if (spec.value === undefined) {
      if (inline !== undefined) throw usageError(`unexpected value '${inline}' for '--${spec.name}' found; no more were expected`);
      flags[spec.name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      value = args[++i];
      // `--to --content x` is a forgotten value, not the id `--content`.
      if (value === undefined || (value.startsWith('-') && value !== '-')) {
        throw usageError(`a value is required for '${flagName(spec)}' but none was supplied${value === undefined ? '' : `; to pass '${value}' as the value, use '--${spec.name}=${value}'`}`);
      }
    }
    addValue(flags, spec, value);
  }
  for (const spec of specs) {
    if (spec.required && flags[spec.name] === undefined) throw missingArgument(spec.name, command);
    if (spec.requires && flags[spec.name] !== undefined && flags[spec.requires] === undefined) throw missingArgument(spec.requires, command);
    if (spec.default !== undefined) flags[spec.name] ??= spec.default;
  }
  return flags;
}

function addValue(flags, spec, value) {
  if (spec.list) {
    const parsed = spec.parse === undefined ? value : parseWith(spec, value);
    flags[spec.name] = [...(flags[spec.name] ?? []), ...(spec.split ? value.split(',') : [parsed])];
    return;
  }
  if (flags[spec.name] !== undefined) throw usageError(`the argument '${flagName(spec)}' cannot be used multiple times`);
  flags[spec.name] = spec.number ? wholeNumber(spec, value) : value;
}

function parseWith(spec, value) {
  try {
    return spec.parse(value);
  } catch (error) {
    throw usageError(`invalid value '${value}' for '${flagName(spec)}': ${error.message}`);
  }
}

function wholeNumber(spec, value) {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = spec;
  const number = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  let problem;
  if (!Number.isSafeInteger(number)) problem = 'not a whole number';
  else if (number < min) problem = `must be at least ${min}`;
  else if (number > max) problem = `must be at most ${max}${spec.value === 'MS' ? ' (the longest timer JavaScript keeps)' : ''}`;
  if (problem === undefined) return number;
  throw Failure.usage('usage', `invalid value '${value}' for '${flagName(spec)}': ${problem}`, `--${spec.name}`);
}

// `flag` and `others` cannot be given together.
function conflicts(flags, flag, others) {
  for (const other of others) {
    if (flags[flag] !== undefined && flags[other] !== undefined) {
      const spec = (name) => flagName(COMMANDS.send.flags.find((s) => s.name === name));
      throw usageError(`the argument '${spec(flag)}' cannot be used with '${spec(other)}'`);
    }
  }
}

function flagName(spec) {
  return spec.value === undefined ? `--${spec.name}` : `--${spec.name} <${spec.value}>`;
}

function missingArgument(name, command = 'send') {
  const spec = COMMANDS[command].flags.find((s) => s.name === name);
  return usageError(`the following required arguments were not provided: ${flagName(spec)}`);
}

function unexpectedArgument(arg, names) {
  const guess = closest(arg.replace(/^-+/, '').replace(/=.*/, ''), names);
  const tip = guess === undefined ? '' : `; tip: a similar argument exists: '--${guess}'`;
  return usageError(`unexpected argument '${arg}' found${tip}`);
}

function unknownCommand(name) {
  if (Object.hasOwn(RUST_ONLY, name)) return Failure.usage('usage', `\`${name}\` (it ${RUST_ONLY[name]}) is a command of the Rust tool only: ${RUST_ONLY_WHY}`);
  const guess = closest(name, Object.keys(COMMANDS));
  return usageError(`unrecognized subcommand '${name}'${guess === undefined ? '' : `; tip: a similar subcommand exists: '${guess}'`}`);
}

function usageError(message) {
  return Failure.usage('usage', `${message}; for more information, try '--help'`);
}

// The name `name` most likely meant, at most two typos away.
function closest(name, names) {
  let best;
  let bestDistance = 3;
  for (const candidate of names) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}

/** Whether `--json` is among the arguments; arguments after `--` are values. */
function jsonRequested(args) {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

function topHelp() {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length), 4) + 2;
  const commands = [...Object.entries(COMMANDS).map(([name, c]) => [name, c.summary]), ['help', 'Print this message or the help of the given command']];
  return [
    ABOUT,
    '',
    'Usage: yunxin-edge [OPTIONS] <COMMAND>',
    '',
    'Commands:',
    ...commands.map(([name, summary]) => `  ${name.padEnd(width)}${summary}`),
    '',
    'Options:',
    `      --json     ${JSON_FLAG.help}`,
    '  -h, --help     Print help',
    '  -V, --version  Print version',
  ].join('\n');
}

function commandHelp(name) {
  const command = COMMANDS[name];
  const flags = [...command.flags, JSON_FLAG, HELP_FLAG];
  return [
    `${command.summary}.`,
    '',
    command.about,
    '',
    `Usage: yunxin-edge ${name} [OPTIONS]`,
    '',
    'Options:',
    ...flags.map((spec) => {
      const short = spec.short === undefined ? '    ' : `-${spec.short}, `;
      const fallback = spec.default === undefined ? '' : ` [default: ${spec.default}]`;
      return `  ${short}${flagName(spec)}\n          ${spec.help}${fallback}`;
    }),
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Files, the environment, the package's errors
// ---------------------------------------------------------------------------

// The bytes of the file given to `flag`, or of stdin for `-`; a usage error (exit 2)
// when it cannot be read.
function readInput(path, flag) {
  try {
    return readFileSync(path === '-' ? 0 : path);
  } catch (error) {
    const reason = String(error?.message ?? error).replace(/^E[A-Z]+: /, '').replace(/, \w+ '[\s\S]*'$/, '');
    throw Failure.usage('unreadable_file', `cannot read ${flag} \`${path}\`: ${reason}`, flag);
  }
}

// YUNXIN_APP_KEY and YUNXIN_APP_SECRET; a usage error naming the variable when one is
// unset or empty. Nothing here formats the secret.
function credentialsFromEnv() {
  const variable = (name, what) => {
    const value = process.env[name];
    if (value) return value;
    throw Failure.usage(
      'missing_credentials',
      `${name} is not set: set it to ${what} from the Yunxin console (credentials are read from the environment only)`,
      name,
    );
  };
  return { appKey: variable(APP_KEY, 'the app key'), appSecret: variable(APP_SECRET, 'the app secret') };
}

// The base URL of a flag, else of YUNXIN_BASE_URL, else none (Yunxin's default), with
// where it came from, for errors.
function baseUrlFrom(flag) {
  if (flag !== undefined) return { url: flag, source: '--base-url' };
  const variable = process.env[BASE_URL_VARIABLE];
  return variable ? { url: variable, source: BASE_URL_VARIABLE } : { url: undefined, source: '--base-url' };
}

// The options each error of the package can name, as the flags (or variables) that
// set them: an error about one of them is a usage error (exit 2), as the Rust tool's
// flag parser would have refused it; any other is about the input (exit 1).
const OPTION_SOURCES = {
  appKey: APP_KEY,
  AppKey: APP_KEY,
  appSecret: APP_SECRET,
  baseUrl: '--base-url',
  base_url: '--base-url',
  eventId: '--event-id',
  maxReceivers: '--max-receivers',
  retries: '--retries',
  retryDelayMs: '--retry-delay-ms',
  maxWaitMs: '--max-wait-ms',
  timeoutMs: '--timeout-ms',
  nonce: '--nonce',
  Nonce: '--nonce',
  now: '--cur-time',
};

// Runs `call` (a function of the package, or one that returns a promise), turning a
// YunxinError into a Failure; `sources` overrides OPTION_SOURCES for this call.
function fromPackage(call, sources = {}) {
  const rethrow = (error) => {
    throw packageFailure(error, sources);
  };
  try {
    const result = call();
    return typeof result?.then === 'function' ? result.catch(rethrow) : result;
  } catch (error) {
    return rethrow(error);
  }
}

// A YunxinError as a Failure (anything else, a bug, as it is).
function packageFailure(error, sources = {}) {
  if (!(error instanceof YunxinError)) return error;
  const names = { ...OPTION_SOURCES, ...sources, ...(sources.baseUrl && { base_url: sources.baseUrl }) };
  const source = Object.hasOwn(names, error.field ?? '') ? names[error.field] : undefined;
  if (source !== undefined) return Failure.usage('usage', `${source}: ${error.message}`, source);
  return Failure.input(error.code, error.message, error.field, error.limit);
}

// ---------------------------------------------------------------------------
// Output and failures
// ---------------------------------------------------------------------------

/** An error that ends the run: an exit code, and a stable code and a one-line message. */
class Failure extends Error {
  constructor(exit, code, message, field, limit) {
    super(oneLine(message));
    this.exit = exit;
    this.code = code;
    this.field = field;
    this.limit = limit;
  }

  /** A usage error (exit 2): a flag, a missing argument, a file, the environment. */
  static usage(code, message, field) {
    return new Failure(EXIT.usage, code, message, field);
  }

  /** A problem with the input (exit 1): a notification over a limit, a callback that fails. */
  static input(code, message, field, limit) {
    return new Failure(EXIT.input, code, message, field, limit);
  }

  /** One line on stderr, or (`json`) `{"error": {...}}` on stdout. */
  report(json) {
    if (!json) return complain(this.message);
    const error = { code: this.code, message: this.message };
    if (this.field !== undefined) error.field = this.field;
    if (this.limit !== undefined) error.limit = this.limit;
    print(pretty({ error }));
  }
}

// A bug: said on one line, without a stack trace.
function internal(error) {
  return Failure.input('internal', `internal error: ${error?.message ?? error}`);
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

// The secret is never formatted by this tool, and the package promises the same of its
// messages; if one ever held it, it would still not be printed.
function redact(text) {
  const secret = process.env[APP_SECRET];
  return secret !== undefined && secret.length >= 6 ? text.replaceAll(secret, '[redacted]') : text;
}

function print(text) {
  process.stdout.write(`${redact(text)}\n`);
}

function complain(line) {
  process.stderr.write(`yunxin-edge: ${redact(line)}\n`);
}

function oneLine(text) {
  return String(text)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
}

function count(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function duration(ms) {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

// A closed pipe (`| head`) is not worth a crash.
process.stdout.on('error', () => {});
process.exitCode = await main(process.argv.slice(2));
