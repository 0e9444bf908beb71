/**
 * docker-compose.yml, checked statically (no Docker engine here): the services a self-hosted Temporal
 * needs laid out as Temporal documents it, pinned images, health checks behind every `service_healthy`,
 * a worker that scales with `--scale worker=N`, and no environment variable that vmconvoy does not read
 * (the names the code reads are collected from the sources, so the list cannot drift).
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../dev/services';

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: string[];
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }> | string[];
  container_name?: string;
  command?: unknown;
}

async function compose(): Promise<Record<string, Service>> {
  const doc = parse(await readFile(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
  };
  return doc.services;
}

function envOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env))
    return Object.fromEntries(env.map((e) => [e.split('=')[0]!, e.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

/** Every `env.NAME` / `process.env.NAME` / `env['NAME']` in the code a worker or the CLI runs. */
async function namesTheCodeReads(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const dir of ['activities', 'worker', 'client', 'common', 'workflows', 'sim', 'dev']) {
    for (const file of await readdir(path.join(REPO_ROOT, dir), { recursive: true })) {
      if (!file.endsWith('.ts')) continue;
      const text = await readFile(path.join(REPO_ROOT, dir, file), 'utf8');
      for (const m of text.matchAll(/\benv(?:\.|\[['"])([A-Z][A-Z0-9_]+)/g)) names.add(m[1]!);
      // Names listed as strings next to their use, e.g. client/settings.ts TARGET_VARS.
      for (const m of text.matchAll(/'((?:VMCONVOY|AWS|TEMPORAL)_[A-Z0-9_]+)'/g)) names.add(m[1]!);
    }
  }
  return names;
}

/** The variables @temporalio/envconfig reads (it is a dependency: read from its build, not listed by hand). */
async function envconfigNames(): Promise<Set<string>> {
  const dir = path.join(REPO_ROOT, 'node_modules', '@temporalio', 'envconfig', 'lib');
  const names = new Set<string>();
  for (const file of await readdir(dir)) {
    if (!file.endsWith('.js')) continue;
    for (const m of (await readFile(path.join(dir, file), 'utf8')).matchAll(/['"](TEMPORAL_[A-Z0-9_]+)['"]/g))
      names.add(m[1]!);
  }
  return names;
}

test('the Temporal cluster is laid out as Temporal documents self-hosting, next to an S3 store and the worker', async () => {
  const services = await compose();
  const byImage = (prefix: string) => Object.entries(services).filter(([, s]) => s.image?.startsWith(prefix));
  assert.ok(byImage('postgres:').length === 1, 'a PostgreSQL database');
  assert.ok(byImage('temporalio/admin-tools:').length >= 1, 'schema setup with temporalio/admin-tools');
  assert.ok(byImage('temporalio/server:').length === 1, 'temporalio/server');
  assert.ok(byImage('temporalio/ui:').length === 1, 'temporalio/ui');
  assert.ok(services.s3, 'an S3-compatible store for trials');
  assert.ok(services.worker, 'the vmconvoy worker');
  const [[serverName]] = byImage('temporalio/server:') as [[string, Service]];
  const server = services[serverName]!;
  assert.ok(
    server.ports?.some((p) => p.endsWith(':7233')),
    'Temporal gRPC published on 7233'
  );
  assert.ok(
    services['temporal-ui']?.ports?.some((p) => p.endsWith(':8080')),
    'the Web UI published'
  );
  // The server starts only after the schema job finished successfully.
  const serverDeps = server.depends_on as Record<string, { condition: string }>;
  const schemaJob = Object.keys(serverDeps).find((d) => services[d]?.image?.startsWith('temporalio/admin-tools:'));
  assert.ok(schemaJob, 'the server depends on the schema setup');
  assert.equal(serverDeps[schemaJob]?.condition, 'service_completed_successfully');
});

test('every image is pinned to an exact version, and every service_healthy dependency has a real health check', async () => {
  const services = await compose();
  for (const [name, s] of Object.entries(services)) {
    assert.ok(s.image, `${name} names its image`);
    const tag = s.image.split(':')[1];
    assert.ok(tag && tag !== 'latest' && /\d/.test(tag), `${name}: image ${s.image} must be pinned to a version`);
    const deps = s.depends_on && !Array.isArray(s.depends_on) ? s.depends_on : {};
    for (const [dep, { condition }] of Object.entries(deps)) {
      assert.ok(services[dep], `${name} depends on a service that exists (${dep})`);
      if (condition === 'service_healthy')
        assert.ok(services[dep].healthcheck, `${dep} needs a health check: ${name} waits for it`);
    }
    if (s.healthcheck) {
      const check = Array.isArray(s.healthcheck.test) ? s.healthcheck.test.join(' ') : s.healthcheck.test;
      assert.doesNotMatch(
        check,
        /\|\|\s*(exit 0|true)\s*$/,
        `${name}: a health check that always passes checks nothing`
      );
    }
  }
  for (const stateful of ['postgresql', 'temporal', 's3'])
    assert.ok(services[stateful]?.healthcheck, `${stateful} has a health check`);
});

test('the worker scales with --scale worker=N and sets only variables vmconvoy reads', async () => {
  const services = await compose();
  const worker = services.worker!;
  assert.equal(worker.container_name, undefined, 'a fixed container name would stop --scale');
  assert.equal(worker.ports, undefined, 'a published host port would collide between replicas');
  const known = new Set([...(await namesTheCodeReads()), ...(await envconfigNames())]);
  for (const name of ['VMCONVOY_BUCKET', 'AWS_ENDPOINT_URL_S3', 'TEMPORAL_ADDRESS'])
    assert.ok(known.has(name), `the scan finds ${name}`);
  for (const [serviceName, service] of Object.entries(services)) {
    if (service.image !== worker.image) continue; // vmconvoy's own image: worker, simulator
    for (const name of Object.keys(envOf(service))) {
      assert.ok(known.has(name), `${serviceName} sets ${name}, which no vmconvoy code reads`);
    }
  }
  const env = envOf(worker);
  assert.ok(
    env.VMCONVOY_BUCKET && env.AWS_REGION && env.TEMPORAL_ADDRESS,
    'the worker has a bucket, a region and a Temporal address'
  );
  // The worker reaches the other services by their compose names.
  assert.match(env.TEMPORAL_ADDRESS ?? '', /^temporal:7233$/);
  assert.match(env.AWS_ENDPOINT_URL_S3 ?? '', /^http:\/\/s3:/);
});
