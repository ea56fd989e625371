// The built package loaded with `require`, as a CommonJS program would.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { createHash, randomBytes } = require('node:crypto');

test('require() gives the CommonJS build, ready without awaiting anything', async () => {
  const { linkPackage } = await import('../test-support/package.mjs');
  linkPackage();
  assert.match(require.resolve('yunxin-edge'), /[/\\]js[/\\]pkg[/\\]node\.cjs$/);

  const { checksum, buildBatchRequests, send, YunxinError } = require('yunxin-edge');
  assert.equal(typeof send, 'function');

  // Checksums equal node:crypto's, ASCII and not.
  for (let i = 0; i < 50; i++) {
    const secret = i % 2 ? randomBytes(12).toString('hex') : `秘密${randomBytes(4).toString('base64')}😀`;
    const nonce = randomBytes(16).toString('hex');
    const curTime = String(1_700_000_000 + i);
    const expected = createHash('sha1').update(secret + nonce + curTime, 'utf8').digest('hex');
    assert.equal(checksum(secret, nonce, curTime), expected);
  }

  const receivers = Array.from({ length: 1201 }, (_, i) => `user${i}`);
  const requests = buildBatchRequests({ appKey: 'k', appSecret: 's' }, { sender_id: 'ops', receiver_ids: receivers, content: 'x' });
  assert.deepEqual(requests.map((r) => r.receiverIds.length), [500, 500, 201]);

  try {
    buildBatchRequests({ appKey: 'k', appSecret: 's' }, { sender_id: 'ops', receiver_ids: ['a'], content: '通'.repeat(4097) });
    assert.fail('expected a validation error');
  } catch (error) {
    assert.ok(error instanceof YunxinError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'too_long');
    assert.equal(error.field, 'content');
    assert.equal(error.limit, 4096);
  }
});
