// Cross-implementation check: requests planned and signed by the Rust core
// (examples/plan.rs) are sent over loopback to the JavaScript emulator, whose
// signature and limit checks share no code with the core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startEmulator } from '../../emulator/index.mjs';

const run = promisify(execFile);
const APP_KEY = 'cross-check-app';
const APP_SECRET = 'cross-check-秘密';

async function planWithRust(receivers, baseUrl) {
  const { stdout } = await run('cargo', ['run', '--quiet', '--example', 'plan', '--', String(receivers), baseUrl], {
    env: { ...process.env, YUNXIN_APP_KEY: APP_KEY, YUNXIN_APP_SECRET: APP_SECRET },
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout);
}

test('1,001 receivers planned in Rust are accepted by the emulator, each once', async (t) => {
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  t.after(() => emu.close());

  const requests = await planWithRust(1001, emu.url);
  assert.equal(requests.length, 3);
  for (const request of requests) {
    const response = await fetch(request.url, {
      method: request.method,
      headers: Object.fromEntries(request.headers),
      body: request.body,
    });
    assert.equal(response.status, 200);
    const answer = await response.json();
    assert.equal(answer.code, 200, answer.msg);
    assert.deepEqual(answer.data.failed_list, []);
  }
  const counts = new Map();
  for (const d of emu.deliveries()) counts.set(d.receiverId, (counts.get(d.receiverId) ?? 0) + 1);
  assert.equal(counts.size, 1001);
  assert.ok([...counts.values()].every((n) => n === 1));
  assert.equal(emu.deliveries()[0].content, '通知: deploy finished');
});

test('a tampered Rust-signed request is rejected by the emulator with 414', async (t) => {
  const emu = await startEmulator({ apps: { [APP_KEY]: APP_SECRET } });
  t.after(() => emu.close());
  const [request] = await planWithRust(1, emu.url);
  const headers = Object.fromEntries(request.headers);
  headers.Nonce = `${headers.Nonce}x`;
  const response = await fetch(request.url, { method: 'POST', headers, body: request.body });
  const answer = await response.json();
  assert.equal(answer.code, 414);
  assert.equal(emu.deliveries().length, 0);
});
