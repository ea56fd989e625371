// What an event costs in Durable Object round trips and SQLite rows, read
// from the relay's own counters in each event's log line: round trips are
// counted where the Worker calls a Durable Object's stub (the event's object,
// the pacer), rows by SQLite itself (the cursor's rowsWritten, answered by the
// event's object). A change that adds a round trip or a write fails here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../emulator/index.mjs';
import { APP_KEY, APP_SECRET, eventually, notification, postEvent, startRelay } from './harness.mjs';

let emu;
let relay;
before(async () => {
  emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  relay = await startRelay({ YUNXIN_BASE_URL: emu.url, YUNXIN_RATE_PER_MINUTE: '6000' });
});
after(async () => {
  await relay?.close();
  await emu?.close();
});

/** The event's log line (the one with its cost). */
function costOf(id) {
  const line = relay.logs
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((l) => l.event_id === id && 'do_round_trips' in l);
  assert.ok(line, `a log line for ${id}`);
  return line;
}

test('a one-call event synchronously: two round trips to its object, the pacer asked by few events, three rows written', async (t) => {
  const events = 20;
  const ids = [];
  for (let i = 0; i < events; i++) {
    const sent = await postEvent(relay.url, notification(1, { prefix: `sync${i}-` }));
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.json.delivered.length, 1);
    ids.push(sent.id);
  }
  const costs = ids.map(costOf);
  t.diagnostic(JSON.stringify(costs.map((c) => [c.do_round_trips, c.pacer_round_trips, c.sqlite_rows_written])));
  for (const cost of costs) {
    // Create-and-begin, and the outcome's record answering the status.
    assert.equal(cost.do_round_trips - cost.pacer_round_trips, 2, JSON.stringify(cost));
    assert.ok(cost.pacer_round_trips <= 1, JSON.stringify(cost));
    // The event's row and its call's row when created; the call's row again
    // by the outcome.
    assert.equal(cost.sqlite_rows_written, 3, JSON.stringify(cost));
  }
  // Slots are leased in blocks: most events ask the pacer nothing.
  const asked = costs.filter((c) => c.pacer_round_trips > 0).length;
  assert.ok(asked >= 1 && asked <= events / 4, `${asked} of ${events} events asked the pacer`);
  assert.deepEqual(Object.values(emu.deliveryCounts()), Array(events).fill(1));
});

test('a one-call event queued: one round trip to its object, which enqueues its calls itself', async () => {
  // At once: events that share a shard are recorded while another's enqueue
  // is awaited, and each must still be told its own rows.
  const sent = await Promise.all(
    Array.from({ length: 12 }, (_, i) => postEvent(relay.url, notification(1, { prefix: `queued${i}-` }), { wait: false })),
  );
  const ids = sent.map((s) => {
    assert.equal(s.status, 202, s.text);
    return s.id;
  });
  for (const id of ids) {
    const cost = costOf(id);
    assert.deepEqual(
      { do_round_trips: cost.do_round_trips, pacer_round_trips: cost.pacer_round_trips, sqlite_rows_written: cost.sqlite_rows_written },
      // The event's row, written as enqueued, and its call's row: the
      // object enqueues the messages itself, and nothing is written after.
      { do_round_trips: 1, pacer_round_trips: 0, sqlite_rows_written: 2 },
    );
  }
  await eventually(() => ids.every((_, i) => emu.deliveryCounts()[`queued${i}-0`] === 1), { what: 'the queued events delivered' });
});

test('an event of three calls: the plan written once, each outcome rewrites its own call\'s row only', async () => {
  const sent = await postEvent(relay.url, notification(1500, { prefix: 'split-' }));
  assert.equal(sent.status, 200, sent.text);
  assert.equal(sent.json.delivered.length, 1500);
  const cost = costOf(sent.id);
  // Created and begun in one round trip, then one record per call.
  assert.equal(cost.do_round_trips - cost.pacer_round_trips, 1 + 3, JSON.stringify(cost));
  // The event's row and three call rows, then one row per outcome: never the
  // 1,500 receivers of the other calls again (a record of the whole delivery
  // would be one row of all of them per command).
  assert.equal(cost.sqlite_rows_written, 1 + 3 + 3, JSON.stringify(cost));
});
