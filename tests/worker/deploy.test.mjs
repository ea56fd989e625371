// The one Worker's configuration can be deployed to an account that has
// nothing of it yet (scripts/lib/deploy.mjs): no service binding and no
// Durable Object script_name naming another Worker (Cloudflare refuses
// both until that Worker exists: errors 10143 and 10061), every class it
// binds created by a migration and exported by the bundle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unstable_readConfig } from 'wrangler';
import { configProblems, exportedClasses, plan, routeSecrets } from '../../scripts/lib/deploy.mjs';

const config = unstable_readConfig({ config: 'wrangler.toml' });
const exported = exportedClasses(readFileSync('worker/build/index.js', 'utf8'));

test('the repository wrangler.toml is one Worker that binds no other script', () => {
  assert.deepEqual(configProblems(config, exported), []);
  assert.deepEqual(config.services ?? [], []);
  const classes = config.durable_objects.bindings.map((b) => b.class_name).sort();
  assert.deepEqual(classes, ['EventIndex', 'EventStore', 'Guard', 'Pacer', 'Storm']);
  for (const name of classes) assert.ok(exported.includes(name), `${name} exported by worker/build/index.js`);
  const result = plan('wrangler.toml');
  assert.deepEqual(result.queues, ['yunxin-edge-deliveries', 'yunxin-edge-dead-letters']);
  assert.deepEqual(result.secrets, ['YUNXIN_APP_KEY', 'YUNXIN_APP_SECRET', 'WEBHOOK_SECRET', 'STATUS_TOKEN']);
});

test('a service binding, a script_name, an unmigrated or unexported class is each named as a problem', () => {
  const broken = {
    ...config,
    services: [{ binding: 'OPS', service: 'yunxin-edge-ops' }],
    durable_objects: {
      bindings: [
        ...config.durable_objects.bindings,
        { name: 'INDEX2', class_name: 'EventIndex', script_name: 'yunxin-edge-ops' },
        { name: 'LOST', class_name: 'Lost' },
      ],
    },
  };
  const problems = configProblems(broken, exported);
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.match(problems[0], /\[\[services\]\] binding OPS names the Worker "yunxin-edge-ops".*10143/);
  assert.match(problems[1], /INDEX2 has script_name "yunxin-edge-ops".*10061/);
  assert.match(problems[2], /Lost \(binding LOST\) is created by no \[\[migrations\]\]/);
  assert.match(problems[3], /Lost \(binding LOST\) is not exported/);
});

test('the secrets a deploy asks for include those the routes name, once each', () => {
  const vars = { ROUTES: JSON.stringify({ a: { verify: { secrets: ['GITHUB_WEBHOOK_SECRET', 'WEBHOOK_SECRET'] } }, b: { verify: { secrets: ['GITHUB_WEBHOOK_SECRET'] } } }) };
  assert.deepEqual(routeSecrets(vars), ['GITHUB_WEBHOOK_SECRET']);
  assert.deepEqual(routeSecrets({ ROUTES: 'not json' }), []);
});
