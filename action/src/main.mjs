// The GitHub Action's entry (action.yml): one notification to the receivers of its
// inputs, through the yunxin-edge package's send(), so that validation, signing, every
// retry and the per-receiver report are the Rust core's, as in the relay and the CLI.
// action/build.mjs bundles this file with the package into dist/index.mjs, which the
// runner runs with Node 20 and no npm install.
//
// What an Action does by hand here, without @actions/core: inputs are INPUT_<NAME>
// variables; outputs and the job summary are appended to the files GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY name; masks, errors and warnings are workflow commands on stdout
// (`::add-mask::`, `::error::`). Read top-down: main(), the inputs, the notification,
// the report as outputs and summary, then the workflow commands.

import { appendFileSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

import { YunxinError, send } from 'yunxin-edge';

const DEFAULT_BASE_URL = 'https://open.yunxinapi.com';
const FAIL_ON = ['any', 'all', 'never'];
// Rows of undelivered receivers in the job summary; the `report` output has them all.
const SUMMARY_ROWS = 100;

// The package's names for what an input sets, as the input's name, for errors.
const INPUT_OF_FIELD = {
  appKey: 'app-key',
  AppKey: 'app-key',
  appSecret: 'app-secret',
  sender_id: 'sender',
  receiver_ids: 'receivers',
  content: 'content',
  'push_config.push_content': 'push-content',
  eventId: 'event-id',
  baseUrl: 'base-url',
  base_url: 'base-url',
};

/** An input that is missing or wrong: the step fails naming it, before anything is sent. */
class InputError extends Error {}

async function main() {
  // First, before anything is printed: the runner hides masked values in every log
  // line that follows, including an error that quotes an input.
  const credentials = { appKey: input('app-key'), appSecret: input('app-secret') };
  for (const secret of Object.values(credentials)) mask(secret);
  try {
    if (!credentials.appKey) throw new InputError('input `app-key` is required');
    if (!credentials.appSecret) throw new InputError('input `app-secret` is required');
    const failOn = input('fail-on') || 'any';
    if (!FAIL_ON.includes(failOn)) throw new InputError(`input \`fail-on\` must be one of ${FAIL_ON.join(', ')}, got \`${failOn}\``);

    const notification = notificationFromInputs();
    const report = await send(credentials, notification, {
      baseUrl: input('base-url') || DEFAULT_BASE_URL,
      eventId: input('event-id') || undefined,
      // A rate limit's minute (Yunxin's 416) is waited out, as the CLI does: a CI job
      // can wait, and a notification sent late beats one not sent.
      maxWaitMs: 60_000,
      onProgress: ({ last }) => log(attemptLine(last)),
    });
    writeOutputs(report);
    writeSummary(report);
    return verdict(report, failOn);
  } catch (error) {
    if (error instanceof InputError) return fail(error.message);
    if (error instanceof YunxinError) {
      const field = error.field ?? '';
      const name = Object.hasOwn(INPUT_OF_FIELD, field) ? INPUT_OF_FIELD[field] : field.startsWith('receiver_ids') ? 'receivers' : undefined;
      return fail(name === undefined ? error.message : `input \`${name}\`: ${error.message}`);
    }
    // A bug: one line, no stack trace in the annotation.
    return fail(`internal error in yunxin-edge: ${error?.message ?? error}`);
  }
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

// An input as the runner passes it (INPUT_ and the name in capitals, hyphens kept),
// trimmed; '' when not given.
function input(name) {
  return (process.env[`INPUT_${name.toUpperCase()}`] ?? '').trim();
}

// The notification of the inputs, for the core to validate.
function notificationFromInputs() {
  const sender = input('sender');
  if (!sender) throw new InputError('input `sender` is required: the sending account');
  const content = input('content');
  if (!content) throw new InputError('input `content` is required');
  const receivers = [...splitReceivers(input('receivers')), ...receiversFile(input('receivers-file'))];
  if (receivers.length === 0) throw new InputError('no receivers: give input `receivers` (ids separated by commas or newlines) or `receivers-file`');
  const pushContent = input('push-content');
  return {
    sender_id: sender,
    receiver_ids: receivers,
    content: isJsonDocument(content) ? compactJson(content) : content,
    push_config: pushContent ? { push_content: pushContent } : undefined,
  };
}

// Whether `text` is a JSON object or array; any other text, JSON scalars included, is
// sent as written.
function isJsonDocument(text) {
  if (!/^[[{]/.test(text)) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// Valid JSON text without the whitespace between its tokens: JSON written over several
// lines of a workflow file costs no characters of the 4096, and its numbers keep every
// digit (JSON.stringify(JSON.parse(text)) would round them).
function compactJson(text) {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!' \t\n\r'.includes(c)) {
      out += c;
    }
  }
  return out;
}

function splitReceivers(text) {
  return text
    .split(/[,\n]/)
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

// The ids of `receivers-file`, one per line, relative to the workspace (the step's
// working directory).
function receiversFile(path) {
  if (!path) return [];
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(`input \`receivers-file\`: cannot read \`${path}\` (${error.code ?? error.message})`);
  }
  return text
    .split('\n')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

// ---------------------------------------------------------------------------
// The report: log lines, outputs, summary, verdict
// ---------------------------------------------------------------------------

// One attempt in a line: the call, what became of it, and what the core made of that.
function attemptLine({ call, attempt, receivers, outcome, recorded }) {
  const [example] = outcome.failed ?? [];
  const what = {
    delivered: () => 'delivered',
    partial_failure: () => `${outcome.failed.length} of ${receivers} failed, e.g. ${example.account_id}: ${example.error_code} ${example.error_msg}`,
    rejected: () => `refused: ${outcome.code} ${outcome.msg}`,
    transport: () => (outcome.http_status === null ? `not sent: ${outcome.reason}` : outcome.reason),
    answer_lost: () => `answer lost: ${outcome.reason}`,
  }[outcome.kind];
  const next =
    recorded.recorded === 'retry'
      ? `; again in ${Math.max(0, recorded.at_ms - Date.now())} ms`
      : recorded.recorded === 'done' && recorded.gave_up
        ? '; giving up'
        : '';
  return `call ${call + 1} (${receivers} receiver${receivers === 1 ? '' : 's'}), attempt ${attempt}: ${what ? what() : outcome.kind}${next}`;
}

function writeOutputs(report) {
  setOutput('delivered', String(report.delivered.length));
  setOutput('failed', String(report.failed.length));
  setOutput('unknown', String(report.unknown.length));
  setOutput('report', JSON.stringify(report));
}

// The job summary: counts, then a row for each receiver that was not delivered (the
// delivered ones could be thousands). Every value from outside (ids, Yunxin's
// messages) is escaped, so that it renders as the text it is.
function writeSummary(report) {
  const total = report.delivered.length + report.failed.length + report.unknown.length + report.not_attempted.length;
  const rows = [
    ...report.failed.map((f) => [f.account_id, f.retryable ? 'failed (retryable)' : 'failed', String(f.error_code), f.error_msg]),
    ...report.unknown.map((u) => [u.account_id, 'unknown', '', u.reason]),
    ...report.not_attempted.map((n) => [n.account_id, 'not sent', '', n.reason]),
  ];
  const lines = [
    `### Yunxin notification: ${report.delivered.length} of ${total} receivers delivered`,
    '',
    '| delivered | failed | unknown | not sent |',
    '| ---: | ---: | ---: | ---: |',
    `| ${report.delivered.length} | ${report.failed.length} | ${report.unknown.length} | ${report.not_attempted.length} |`,
  ];
  if (rows.length > 0) {
    lines.push('', '| receiver | outcome | code | reason |', '| --- | --- | --- | --- |');
    for (const row of rows.slice(0, SUMMARY_ROWS)) lines.push(`| ${row.map(markdownText).join(' | ')} |`);
    if (rows.length > SUMMARY_ROWS) lines.push('', `… and ${rows.length - SUMMARY_ROWS} more: the step's \`report\` output has every receiver.`);
  }
  if (report.retry_after_secs !== undefined) lines.push('', `The failed ones may be sent again after ${report.retry_after_secs} s.`);
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (file) appendFileSync(file, `${lines.join('\n')}\n`);
}

// Whether the step fails, by `fail-on`; the exit code.
function verdict(report, failOn) {
  const undelivered = report.failed.length + report.unknown.length;
  const total = undelivered + report.delivered.length;
  // A call refused as a whole with 414 (a wrong AppKey or CheckSum) or 403: the inputs
  // are the first suspects, said whatever `fail-on` is.
  const refused = report.failed.find((f) => f.error_code === 414 || f.error_code === 403);
  if (refused !== undefined) {
    command(failOn === 'never' ? 'warning' : 'error', `Yunxin refused the call: ${refused.error_code} ${refused.error_msg}; check the app-key and app-secret inputs`);
  }
  const summary = `${report.delivered.length} of ${total} receivers delivered, ${report.failed.length} failed, ${report.unknown.length} unknown`;
  const failing = failOn === 'any' ? undelivered > 0 : failOn === 'all' ? total > 0 && report.delivered.length === 0 : false;
  if (failing) return fail(`${summary} (fail-on: ${failOn})`);
  if (undelivered > 0) command('warning', summary);
  else log(summary);
  return 0;
}

// ---------------------------------------------------------------------------
// Workflow commands, outputs
// ---------------------------------------------------------------------------

function mask(value) {
  // A mask covers one line: a value of several is masked line by line.
  for (const line of value.split(/\r?\n/)) if (line.trim() !== '') process.stdout.write(`::add-mask::${commandData(line)}\n`);
}

// An `::error::` or `::warning::` annotation that stays one command whatever it holds.
function command(kind, message) {
  process.stdout.write(`::${kind} title=yunxin-edge::${commandData(message)}\n`);
}

// A command's data as the runner reads it back: `%`, CR and LF escaped (a mask of a
// secret holding `%0A` masks that secret, not a line break).
function commandData(text) {
  return text.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}

function fail(message) {
  command('error', message);
  return 1;
}

// A plain log line. Values from outside may hold line breaks: each line of stdout that
// starts with `::` is a workflow command, so nothing here may start a line.
function log(line) {
  process.stdout.write(`yunxin-edge: ${line.replace(/[\u0000-\u001f\u007f]+/g, ' ')}\n`);
}

// `name<<DELIMITER`, the value, `DELIMITER`: the runner's format for a value of any
// number of lines, with a delimiter the value cannot contain.
function setOutput(name, value) {
  const file = process.env.GITHUB_OUTPUT;
  if (!file) return log(`${name}=${value}`);
  let delimiter;
  do delimiter = `ghadelimiter_${randomUUID()}`;
  while (value.includes(delimiter));
  appendFileSync(file, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
}

// Markdown table cell text: ASCII punctuation as character references (no emphasis,
// link, code span, HTML or `|` that ends the cell), line breaks and other control and
// direction characters as spaces.
function markdownText(text) {
  return String(text)
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, ' ')
    .replace(/[!-/:-@[-`{-~]/g, (c) => `&#${c.charCodeAt(0)};`);
}

process.exitCode = await main();
