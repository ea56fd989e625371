// What `scripts/deploy` reads from the Worker's configuration, and the
// checks that make a first deploy on an empty account possible.
//
// Cloudflare refuses a Worker whose service binding names a Worker that does
// not exist yet (error 10143) or whose Durable Object binding has a
// `script_name` that does not exist (error 10061):
//   https://developers.cloudflare.com/workers/runtime-apis/bindings/service-bindings/
//   https://developers.cloudflare.com/durable-objects/reference/durable-objects-migrations/
// So the one Worker binds no other script, and every class it binds is its
// own, exported by its bundle and created by a migration.
//
//   node scripts/lib/deploy.mjs plan [config]     prints the plan as JSON, or the problems (exit 1)
import { readFileSync } from 'node:fs';
import { unstable_readConfig } from 'wrangler';

/** The secrets the Worker itself reads (worker/src/config.rs); STATUS_TOKEN opens the operator API and the dashboard. */
export const WORKER_SECRETS = ['YUNXIN_APP_KEY', 'YUNXIN_APP_SECRET', 'WEBHOOK_SECRET', 'STATUS_TOKEN'];

/**
 * Everything in `config` (wrangler's reading of wrangler.toml) that would
 * make a first deploy fail or depend on another Worker; `exported` are the
 * class names the built bundle exports. An empty list means none.
 */
export function configProblems(config, exported) {
  const problems = [];
  for (const service of config.services ?? []) {
    problems.push(`[[services]] binding ${service.binding} names the Worker "${service.service}": a first deploy fails while it does not exist (error 10143); this Worker binds no other script`);
  }
  const bindings = config.durable_objects?.bindings ?? [];
  for (const binding of bindings) {
    if (binding.script_name) {
      problems.push(`Durable Object binding ${binding.name} has script_name "${binding.script_name}": a first deploy fails while that script does not exist (error 10061); export ${binding.class_name} from this Worker instead`);
    }
  }
  const created = new Set((config.migrations ?? []).flatMap((m) => [...(m.new_sqlite_classes ?? []), ...(m.new_classes ?? [])]));
  for (const binding of bindings.filter((b) => !b.script_name)) {
    if (!created.has(binding.class_name)) problems.push(`Durable Object class ${binding.class_name} (binding ${binding.name}) is created by no [[migrations]] entry`);
    if (exported && !exported.includes(binding.class_name)) problems.push(`Durable Object class ${binding.class_name} (binding ${binding.name}) is not exported by the built Worker`);
  }
  const producers = new Set((config.queues?.producers ?? []).map((p) => p.queue));
  for (const consumer of config.queues?.consumers ?? []) {
    if (consumer.dead_letter_queue && !producers.has(consumer.dead_letter_queue) && !(config.queues?.consumers ?? []).some((c) => c.queue === consumer.dead_letter_queue)) {
      problems.push(`queue ${consumer.queue}'s dead_letter_queue ${consumer.dead_letter_queue} is neither produced to nor consumed here`);
    }
  }
  return problems;
}

/** The class names a built Worker's entry module exports (`export class X`, `export { X, Y as Z }`). */
export function exportedClasses(entrySource) {
  const names = new Set();
  for (const [, name] of entrySource.matchAll(/export\s+(?:default\s+)?class\s+([A-Za-z_$][\w$]*)/g)) names.add(name);
  for (const [, list] of entrySource.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const item of list.split(',')) {
      const name = item.trim().split(/\s+as\s+/).pop();
      if (name) names.add(name);
    }
  }
  return [...names];
}

/** The secrets the routes in `vars.ROUTES` name (a table or JSON text), each once. */
export function routeSecrets(vars) {
  let routes = vars.ROUTES;
  if (typeof routes === 'string') {
    try {
      routes = JSON.parse(routes);
    } catch {
      return [];
    }
  }
  const names = Object.values(routes ?? {}).flatMap((route) => route?.verify?.secrets ?? []);
  return [...new Set(names)].filter((name) => !WORKER_SECRETS.includes(name));
}

/** What a deploy of `configPath` needs: its name, its queues, its secrets, and the config's problems. */
export function plan(configPath = 'wrangler.toml', entryPath) {
  const config = unstable_readConfig({ config: configPath });
  const entry = entryPath ?? config.main;
  let exported;
  try {
    exported = exportedClasses(readFileSync(entry, 'utf8'));
  } catch {
    exported = undefined; // not built yet: the class check waits for the build
  }
  const queues = [...new Set([...(config.queues?.producers ?? []).map((p) => p.queue), ...(config.queues?.consumers ?? []).map((c) => c.queue)])];
  return {
    name: config.name,
    queues,
    secrets: [...WORKER_SECRETS, ...routeSecrets(config.vars ?? {})],
    problems: configProblems(config, exported),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [command, configPath] = process.argv.slice(2);
  if (command !== 'plan') {
    console.error('usage: node scripts/lib/deploy.mjs plan [wrangler.toml]');
    process.exit(2);
  }
  const result = plan(configPath);
  console.log(JSON.stringify(result));
  process.exit(result.problems.length ? 1 : 0);
}
