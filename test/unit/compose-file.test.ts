/**
 * docker-compose.yml and the Dockerfile, checked statically (no Docker engine here): the services a
 * self-hosted Temporal needs laid out as Temporal documents it, pinned images (base images by digest),
 * health checks behind every `service_healthy`, a worker that scales with `--scale worker=N`, no
 * environment variable that vmconvoy does not read (the names the code reads are collected from the
 * sources, so the list cannot drift), the Temporal server and Web UI run the deploy/temporal/ files
 * `npm run cluster` runs (mounted, so the two stacks cannot drift); and a safe deployment: ports
 * published on 127.0.0.1 only, no secret on a command line, a worker image with production dependencies
 * only and no simulator code.
 */
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../dev/services';
import { DEPLOY_DIR, DYNAMIC_CONFIG_FILE } from '../../dev/cluster';

interface Service {
  image?: string;
  build?: string | { context: string; target?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | { host_ip?: string; published?: string | number; target: number }>;
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }> | string[];
  container_name?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  volumes?: string[];
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
    server.ports?.some((p) => typeof p === 'string' && p.endsWith(':7233')),
    'Temporal gRPC published on 7233'
  );
  assert.ok(
    services['temporal-ui']?.ports?.some((p) => typeof p === 'string' && p.endsWith(':8080')),
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
    const tag = s.image.split('@')[0]!.split(':')[1];
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
    if (!service.image?.startsWith('vmconvoy/')) continue; // vmconvoy's own images: worker, CLI, simulator
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

/** The published host address of a port mapping: short syntax `[HOST_IP:][HOST:]CONTAINER`, or long syntax. */
function hostIp(port: NonNullable<Service['ports']>[number]): string | undefined {
  if (typeof port !== 'string') return port.host_ip;
  const parts = port.split(':');
  return parts.length === 3 ? parts[0] : undefined; // HOST:CONTAINER and CONTAINER bind every address
}

test('published ports bind 127.0.0.1 only; S3, the simulator and PostgreSQL are not published at all', async () => {
  const services = await compose();
  const published = Object.entries(services).filter(([, s]) => s.ports?.length);
  assert.deepEqual(published.map(([name]) => name).sort(), ['temporal', 'temporal-ui']);
  for (const [name, s] of published)
    for (const port of s.ports ?? []) assert.equal(hostIp(port), '127.0.0.1', `${name}: ${JSON.stringify(port)}`);
  assert.equal(hostIp('7233:7233'), undefined, 'a mapping without an address is seen as open to all');
  assert.equal(hostIp('0.0.0.0:7233:7233'), '0.0.0.0');
});

/** The words a container is started with (command, entrypoint, health check). */
function commandLines(s: Service): string[] {
  const words = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return [...words(s.command), ...words(s.entrypoint), ...words(s.healthcheck?.test)];
}

/** Flags that put a password or key on a command line. */
const SECRET_FLAGS = /(^|\s)--?(pw|password|passwd|secret[\w-]*|access-key|api-key|token)(=|\s|$)/i;

test('no secret on a command line: passwords and keys are environment variables', async () => {
  const services = await compose();
  const secrets = new Set<string>();
  const users = new Set<string>();
  for (const s of Object.values(services))
    for (const [name, value] of Object.entries(envOf(s))) {
      if (/PASSWORD|PWD|SECRET|TOKEN|ROOT_ACCESS_KEY/.test(name) && value) secrets.add(value);
      if (/USER/.test(name)) users.add(value);
    }
  // The trial PostgreSQL password is its user name too (`pg_isready -U temporal` names the user): that word
  // cannot be told apart on a command line, the flags check below covers it.
  for (const user of users) secrets.delete(user);
  assert.ok(secrets.has('vmconvoy-local-secret'), `secrets found: ${[...secrets].join(', ')}`);
  for (const [name, s] of Object.entries(services)) {
    for (const line of commandLines(s)) {
      assert.doesNotMatch(line, SECRET_FLAGS, `${name} passes a secret as a flag: ${line}`);
      for (const secret of secrets)
        assert.ok(!new RegExp(`(^|[\\s='"])${secret}($|[\\s'"])`).test(line), `${name}'s command line holds a secret`);
    }
  }
  assert.match('temporal-sql-tool --pw temporal create', SECRET_FLAGS, 'the check sees the old schema job');
  assert.match('sim --secret-key vmconvoy-local-secret', SECRET_FLAGS);
  const docker = await dockerfile();
  for (const stage of docker)
    for (const line of stage.lines) assert.doesNotMatch(line, SECRET_FLAGS, `Dockerfile: ${line}`);
});

interface Stage {
  from: string;
  name: string | undefined;
  lines: string[];
}

async function dockerfile(): Promise<Stage[]> {
  const text = (await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ from: from[1]!, name: from[2], lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

/** `repo[:tag]@sha256:<64 hex>`: the only form a digest pin takes. */
const DIGEST_PIN = /^[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}$/;

test('base images: a Node LTS of 22 or later and the PostgreSQL image pinned by digest, every digest well formed', async () => {
  const services = await compose();
  const stages = await dockerfile();
  const names = new Set(stages.map((s) => s.name));
  const bases = stages.filter((s) => !names.has(s.from));
  assert.ok(bases.length > 0);
  for (const { from } of bases) {
    assert.match(from, DIGEST_PIN, `Dockerfile FROM ${from} is pinned by digest`);
    const node = /^node:(\d+)\.\d+\.\d+-/.exec(from);
    assert.ok(node, `${from}: the base image is node:<exact version>`);
    const major = Number(node[1]);
    assert.ok(major >= 22 && major % 2 === 0, `Node ${major}: a supported LTS line (even, 22 or later)`);
  }
  const postgres = services.postgresql?.image ?? '';
  assert.match(postgres, DIGEST_PIN, 'PostgreSQL is pinned by digest');
  assert.match(postgres, /^postgres:\d+\.\d+-/, 'to an exact minor version');
  for (const [name, s] of Object.entries(services))
    if (s.image?.includes('@')) assert.match(s.image, DIGEST_PIN, `${name}: ${s.image}`);
});

/** The packages a file loads when it runs: static and dynamic imports and requires, not `import type`. */
function runtimeImports(text: string): { packages: string[]; staticRelative: string[] } {
  const code = text.replace(/^\s*import\s+type\s[^;]*;/gm, '').replace(/^\s*export\s+type\s[^;]*;/gm, '');
  const packages: string[] = [];
  const staticRelative: string[] = [];
  for (const m of code.matchAll(
    /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire(?:\.resolve)?\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm
  )) {
    const spec = m[1]!;
    if (spec.startsWith('.')) {
      if (!m[0].includes('(')) staticRelative.push(spec);
    } else packages.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  }
  return { packages, staticRelative };
}

test('the worker image: production dependencies only, no @temporalio/testing and no simulator code', async () => {
  const services = await compose();
  const stages = await dockerfile();
  const worker = stages.at(-1)!;
  assert.equal(worker.name, 'worker', '`docker build .` (the last stage) builds the worker');
  assert.deepEqual(services.worker?.build, { context: '.', target: 'worker' });
  assert.equal(services['ec2-sim']?.build && (services['ec2-sim'].build as { target?: string }).target, 'ec2-sim');
  assert.notEqual(services['ec2-sim']?.image, services.worker?.image, 'the simulator has an image of its own');
  // The worker's stage and those it is built FROM.
  const chain: Stage[] = [];
  for (let s: Stage | undefined = worker; s;) {
    chain.unshift(s);
    const from: string = s.from;
    s = stages.find((x) => x.name === from);
  }
  const run = chain.flatMap((s) => s.lines.filter((l) => /^RUN\b.*\bnpm\s+(ci|install)\b/.test(l)));
  assert.ok(run.length > 0 && run.every((l) => /--omit=dev\b/.test(l)), `a production install: ${run.join(' | ')}`);
  // COPY SRC... DEST: every word but the first and the last.
  const copied = chain
    .flatMap((s) => s.lines.filter((l) => /^COPY\s/.test(l) && !l.includes('--from')))
    .flatMap((l) =>
      l
        .split(/\s+/)
        .slice(1, -1)
        .map((src) => src.replace(/\/$/, ''))
    );
  for (const forbidden of ['sim', 'test', 'dev', 'bench', 'scripts', '.'])
    assert.ok(!copied.includes(forbidden), `the worker image does not copy ${forbidden}/`);

  const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  assert.equal(pkg.dependencies['@temporalio/testing'], undefined, '@temporalio/testing is a devDependency');
  assert.ok(pkg.devDependencies['@temporalio/testing'], 'which the tests still have');
  // Everything the copied code loads is installed by --omit=dev, and nothing reaches into a folder left out.
  const folders = copied.filter((c) => !/\.json$/.test(c));
  const builtins = new Set(builtinModules);
  let files = 0;
  for (const folder of folders) {
    for (const file of await readdir(path.join(REPO_ROOT, folder), { recursive: true })) {
      if (!/\.(ts|js)$/.test(file) || file.endsWith('.d.ts')) continue;
      files++;
      const full = path.join(REPO_ROOT, folder, file);
      const { packages, staticRelative } = runtimeImports(await readFile(full, 'utf8'));
      for (const p of packages)
        assert.ok(
          builtins.has(p.replace(/^node:/, '')) || pkg.dependencies[p],
          `${folder}/${file} loads ${p}, which a production install lacks`
        );
      for (const rel of staticRelative) {
        const top = path.relative(REPO_ROOT, path.resolve(path.dirname(full), rel)).split(path.sep)[0]!;
        assert.ok(copied.includes(top), `${folder}/${file} imports ${rel}, outside the image`);
      }
    }
  }
  assert.ok(files > 50, `the scan read the image's code (${files} files)`);
  assert.deepEqual(runtimeImports("import type { X } from '@temporalio/testing';\nconst t = await import('x/y');"), {
    packages: ['x'],
    staticRelative: [],
  });
});

test('.dockerignore keeps local state, keys and the host node_modules out of the build', async () => {
  const ignored = (await readFile(path.join(REPO_ROOT, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const entry of ['.vmconvoy', 'node_modules', '.git', 'test']) assert.ok(ignored.includes(entry), entry);
});

/** The host file behind a path inside a service's container, through its bind mounts; undefined if none. */
function hostFileOf(service: Service, containerPath: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    const [host, inside, mode] = volume.split(':');
    if (!host?.startsWith('.') || !inside) continue; // named volumes hold state, not configuration
    if (containerPath.startsWith(`${inside}/`)) {
      assert.equal(mode, 'ro', `${volume}: configuration is mounted read-only`);
      return path.resolve(REPO_ROOT, host, path.relative(inside, containerPath));
    }
  }
  return undefined;
}

/** The file `--root R --config C --env E` makes a Temporal server or UI server read: R/C/E.yaml. */
function configFileOf(words: string[]): string | undefined {
  const flag = (name: string): string | undefined => {
    const i = words.indexOf(name);
    return i >= 0 ? words[i + 1] : undefined;
  };
  const [root, config, env] = [flag('--root'), flag('--config'), flag('--env')];
  return root && config && env ? path.posix.join(root, config, `${env}.yaml`) : undefined;
}

test('the compose stack runs the configuration files `npm run cluster` runs: server, dynamic config and UI', async () => {
  const services = await compose();
  // What dev/cluster.ts starts its processes with: `--root DEPLOY_DIR --config C --env E` → DEPLOY_DIR/C/E.yaml.
  const clusterSource = await readFile(path.join(REPO_ROOT, 'dev', 'cluster.ts'), 'utf8');
  const clusterFiles = [...clusterSource.matchAll(/'--root', DEPLOY_DIR, '--config', '([\w-]+)', '--env', '([\w-]+)'/g)]
    .map((m) => path.join(DEPLOY_DIR, m[1]!, `${m[2]!}.yaml`))
    .sort();
  assert.deepEqual(
    clusterFiles.map((f) => path.relative(REPO_ROOT, f)),
    ['deploy/temporal/server/vmconvoy.yaml', 'deploy/temporal/ui/vmconvoy.yaml'],
    'the cluster runs the server and the UI from deploy/temporal'
  );

  const composeFiles: string[] = [];
  for (const prefix of ['temporalio/server:', 'temporalio/ui:']) {
    const [entry] = Object.entries(services).filter(([, s]) => s.image?.startsWith(prefix));
    assert.ok(entry, `a ${prefix} service`);
    const [name, service] = entry;
    const words = [service.entrypoint, service.command].flatMap((w) => (w === undefined ? [] : [w].flat()));
    const inside = configFileOf(words);
    assert.ok(inside, `${name} names its configuration with --root, --config and --env: ${words.join(' ')}`);
    const host = hostFileOf(service, inside);
    assert.ok(host, `${name} reads ${inside}, which no bind mount of the repository provides`);
    composeFiles.push(host);
    if (prefix === 'temporalio/server:') {
      const dynamic = envOf(service).DYNAMIC_CONFIG_FILE_PATH ?? '';
      assert.equal(hostFileOf(service, dynamic), DYNAMIC_CONFIG_FILE, `${name}'s dynamic config is the cluster's`);
    }
  }
  assert.deepEqual(composeFiles.sort(), clusterFiles, 'compose mounts exactly the files the cluster runs');
  for (const file of [...clusterFiles, DYNAMIC_CONFIG_FILE]) await readFile(file, 'utf8'); // they exist

  // The checks see a file that is not mounted, or mounted from elsewhere.
  const probe: Service = { volumes: ['./deploy/temporal/server:/etc/t/server:ro', 'data:/etc/t/ui'] };
  assert.equal(hostFileOf(probe, '/etc/t/server/x.yaml'), path.join(DEPLOY_DIR, 'server', 'x.yaml'));
  assert.equal(hostFileOf(probe, '/etc/t/ui/x.yaml'), undefined);
  assert.equal(configFileOf(['temporal-server', '--env', 'docker', 'start']), undefined);
});
