// Runs the relay as its own process, so that a test can kill it hard
// (SIGKILL to its process group) and start it again on the same persisted
// state. Bindings come as JSON in RELAY_BINDINGS; prints the URL once ready,
// and workerd's log lines on stderr.
import { startRelay } from './harness.mjs';

const relay = await startRelay(JSON.parse(process.env.RELAY_BINDINGS ?? '{}'), {
  persistTo: process.env.RELAY_PERSIST_TO,
  onLog: (line) => process.stderr.write(`${line}\n`),
});
console.log(relay.url);
