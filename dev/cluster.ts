/**
 * The production topology of Temporal, from real parts and no containers: PostgreSQL (dev/postgres.ts),
 * the schema made by temporal-sql-tool, the frontend, history, matching and internal-worker services as
 * four separate `temporal-server` processes sharing one configuration (deploy/temporal/server), the
 * dynamic configuration (deploy/temporal/dynamicconfig) and the Web UI as its own `temporal-ui-server`
 * process (deploy/temporal/ui). Everything binds 127.0.0.1. docker-compose.yml mounts the same files.
 *
 * `npm run cluster` (dev/cluster-cli.ts) runs it by hand; tests call `startCluster` and disrupt single
 * services with `kill` and `restart`.
 */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { chmod, mkdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Postgres } from './postgres';
import { startPostgres } from './postgres';
import type { ServiceProcess } from './process';
import { freePort, spawnService } from './process';
import { ensureTemporalSchema } from './cluster-schema';
import { REPO_ROOT } from './services';
import { resolveTemporalServer, resolveTemporalSqlTool, resolveTemporalUiServer } from './tools';

export const DEPLOY_DIR = path.join(REPO_ROOT, 'deploy', 'temporal');
export const DYNAMIC_CONFIG_FILE = path.join(DEPLOY_DIR, 'dynamicconfig', 'vmconvoy.yaml');

export const TEMPORAL_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
export type TemporalService = (typeof TEMPORAL_SERVICES)[number];
export type ClusterService = TemporalService | 'postgres' | 'ui';

/** Every port the cluster listens on; each left out is a free one chosen by the kernel. */
export interface ClusterPorts {
  postgres?: number;
  frontend?: number;
  frontendHttp?: number;
  ui?: number;
  /** gRPC ports of the internal services (the frontend's is `frontend`). */
  history?: number;
  matching?: number;
  worker?: number;
  /** Ring membership ports, one per service; below 32768 (see freeLowPort). */
  membership?: Partial<Record<TemporalService, number>>;
  /** Prometheus /metrics, one per service. */
  metrics?: Partial<Record<TemporalService, number>>;
}

export interface ClusterOptions {
  /** Holds PostgreSQL's data and every process's log (`logs/<service>.log`). Reused: state survives. */
  dir: string;
  ports?: ClusterPorts;
  /** Start the Web UI. @default true */
  ui?: boolean;
  /** Server log level (the log files grow fast at info). @default warn */
  logLevel?: string;
  /** Retention of the `default` namespace when this start creates it (`vmconvoy setup` changes it). @default 3 */
  retentionDays?: number;
  log?: (line: string) => void;
}

export interface Cluster {
  /** The frontend's gRPC address, for TEMPORAL_ADDRESS. */
  address: string;
  namespace: string;
  /** The Web UI, or undefined with `ui: false`. */
  uiUrl: string | undefined;
  pg: Postgres;
  /** `/metrics` of each Temporal service. */
  metricsUrls: Record<TemporalService, string>;
  logDir: string;
  /** Stop (SIGTERM; PostgreSQL: fast shutdown) and start again, same ports and data. Also starts a killed one. */
  restart(service: ClusterService): Promise<void>;
  /** SIGKILL, as a crash (PostgreSQL: immediate shutdown, so crash recovery runs on the next start). */
  kill(service: ClusterService): Promise<void>;
  /** Process ids now (they change on restart), for resource accounting. */
  pids(): Partial<Record<ClusterService, number>>;
  /** Every process, Temporal and UI first, PostgreSQL last. */
  stop(): Promise<void>;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free port below 32768. The SQL schema stores each service's membership port in a SMALLINT column
 * (cluster_membership.rpc_port), so a port from the kernel's ephemeral range (32768 and up on Linux)
 * makes the service die at start with "value ... is out of range for type smallint". Ports below that
 * range are also never taken by outgoing connections.
 */
export async function freeLowPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12_000);
    if (!taken.has(port) && (await portIsFree(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port found between 20000 and 32000 for a membership listener');
}

async function resolvePorts(given: ClusterPorts = {}): Promise<Required<ClusterPorts>> {
  const pick = async (p: number | undefined): Promise<number> => p ?? (await freePort());
  const taken = new Set<number>();
  const low = async (p: number | undefined): Promise<number> => p ?? (await freeLowPort(taken));
  const perService = async (
    m: Partial<Record<TemporalService, number>> | undefined,
    choose: (p: number | undefined) => Promise<number>
  ): Promise<Record<TemporalService, number>> => ({
    frontend: await choose(m?.frontend),
    history: await choose(m?.history),
    matching: await choose(m?.matching),
    worker: await choose(m?.worker),
  });
  return {
    postgres: await pick(given.postgres),
    frontend: await pick(given.frontend),
    frontendHttp: await pick(given.frontendHttp),
    ui: await pick(given.ui),
    history: await pick(given.history),
    matching: await pick(given.matching),
    worker: await pick(given.worker),
    membership: await perService(given.membership, low),
    metrics: await perService(given.metrics, pick),
  };
}

/** The environment deploy/temporal/server/vmconvoy.yaml is rendered with, for one service process. */
export function serverEnv(
  service: TemporalService,
  ports: Required<ClusterPorts>,
  pg: Pick<Postgres, 'host' | 'port' | 'user' | 'password'>,
  logLevel: string
): NodeJS.ProcessEnv {
  const m = ports.membership as Record<TemporalService, number>;
  return {
    ...process.env,
    DB: 'postgres12',
    POSTGRES_SEEDS: pg.host,
    DB_PORT: String(pg.port),
    POSTGRES_USER: pg.user,
    POSTGRES_PWD: pg.password,
    BIND_ON_IP: '127.0.0.1',
    TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
    FRONTEND_GRPC_PORT: String(ports.frontend),
    FRONTEND_HTTP_PORT: String(ports.frontendHttp),
    FRONTEND_MEMBERSHIP_PORT: String(m.frontend),
    HISTORY_GRPC_PORT: String(ports.history),
    HISTORY_MEMBERSHIP_PORT: String(m.history),
    MATCHING_GRPC_PORT: String(ports.matching),
    MATCHING_MEMBERSHIP_PORT: String(m.matching),
    WORKER_GRPC_PORT: String(ports.worker),
    WORKER_MEMBERSHIP_PORT: String(m.worker),
    PROMETHEUS_ENDPOINT: `127.0.0.1:${(ports.metrics as Record<TemporalService, number>)[service]}`,
    DYNAMIC_CONFIG_FILE_PATH: DYNAMIC_CONFIG_FILE,
    LOG_LEVEL: logLevel,
  };
}

/**
 * The port that shows a service has started: its gRPC listener, except for the internal worker, which
 * serves no gRPC (it is a client of the frontend) and only joins the membership ring.
 */
const readyPortOf = (service: TemporalService, ports: Required<ClusterPorts>): number =>
  service === 'worker'
    ? (ports.membership as Record<TemporalService, number>).worker
    : { frontend: ports.frontend, history: ports.history, matching: ports.matching }[service];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the frontend answers for `namespace`, creating the namespace on a new database (the
 * server creates only its own `temporal-system`).
 */
async function ensureNamespace(address: string, namespace: string, retentionDays: number): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 60_000 });
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await connection.workflowService.describeNamespace({ namespace });
        // Served from the frontend's namespace cache, which lags a new namespace by its refresh interval.
        await connection.workflowService.countWorkflowExecutions({ namespace, query: '' });
        return;
      } catch (err) {
        const notFound = (err as { code?: number }).code === 5;
        if (notFound) {
          await connection.workflowService
            .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(retentionDays * 86_400_000) })
            .catch((e: { code?: number }) => {
              if (e.code !== 6) throw e; // ALREADY_EXISTS: registered meanwhile; wait for the cache.
            });
        }
        if (Date.now() > deadline)
          throw new Error(`the frontend at ${address} did not serve "${namespace}": ${(err as Error).message}`);
        await sleep(500);
      }
    }
  } finally {
    await connection.close();
  }
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[cluster] ${line}\n`));
  const dir = path.resolve(opts.dir);
  const logDir = path.join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  // PostgreSQL may run as another user (dev/postgres.ts), who must pass through the cluster's own folder
  // (mkdtemp makes folders 0700): traverse only, no listing.
  await chmod(dir, ((await stat(dir)).mode & 0o777) | 0o001);
  const withUi = opts.ui !== false;
  const logLevel = opts.logLevel ?? 'warn';
  const [server, sqlTool, uiServer] = [
    await resolveTemporalServer({ log }),
    await resolveTemporalSqlTool({ log }),
    withUi ? await resolveTemporalUiServer({ log }) : undefined,
  ];
  if (!server || !sqlTool || (withUi && !uiServer))
    throw new Error('the Temporal server, its SQL tool or the UI server is missing and Go (>= 1.25) is not on PATH');
  const ports = await resolvePorts(opts.ports);
  const pg = await startPostgres({ dir: path.join(dir, 'postgres'), port: ports.postgres });
  const processes: Partial<Record<TemporalService | 'ui', ServiceProcess>> = {};
  try {
    const schema = await ensureTemporalSchema(sqlTool.path, pg);
    log(
      `schema: ${Object.entries(schema)
        .map(([db, what]) => `${db} ${what}`)
        .join('; ')}`
    );

    const launch = async (service: TemporalService | 'ui'): Promise<void> => {
      if (service === 'ui') {
        const uiOrigin = `http://127.0.0.1:${ports.ui}`;
        processes.ui = await spawnService({
          name: 'temporal-ui',
          command: uiServer!.path,
          args: ['--root', DEPLOY_DIR, '--config', 'ui', '--env', 'vmconvoy', 'start'],
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: `127.0.0.1:${ports.frontend}`,
            TEMPORAL_UI_IP: '127.0.0.1',
            TEMPORAL_UI_PORT: String(ports.ui),
            TEMPORAL_CORS_ORIGINS: uiOrigin,
          },
          logFile: path.join(logDir, 'ui.log'),
          readyPort: ports.ui,
        });
        return;
      }
      processes[service] = await spawnService({
        name: `temporal-${service}`,
        command: server.path,
        args: ['--root', DEPLOY_DIR, '--config', 'server', '--env', 'vmconvoy', '--allow-no-auth', 'start'].concat([
          '--service',
          service,
        ]),
        env: serverEnv(service, ports, pg, logLevel),
        logFile: path.join(logDir, `${service}.log`),
        readyPort: readyPortOf(service, ports),
        readyTimeoutMs: 120_000,
      });
    };

    // The services find each other through the membership table in PostgreSQL, but each also writes the
    // cluster's metadata record at start when it is missing: on a new database, four processes at once
    // collide on its primary key and the losers exit. One first (it has written the record once it
    // listens), then the rest together.
    await launch('history');
    await Promise.all(TEMPORAL_SERVICES.filter((s) => s !== 'history').map(launch));
    const address = `127.0.0.1:${ports.frontend}`;
    await ensureNamespace(address, 'default', opts.retentionDays ?? 3);
    if (withUi) await launch('ui');

    const stopOne = async (service: TemporalService | 'ui'): Promise<void> => {
      await processes[service]?.stop(15_000);
    };
    return {
      address,
      namespace: 'default',
      uiUrl: withUi ? `http://127.0.0.1:${ports.ui}` : undefined,
      pg,
      metricsUrls: Object.fromEntries(
        TEMPORAL_SERVICES.map((s) => [s, `http://127.0.0.1:${ports.metrics[s]}/metrics`])
      ) as Record<TemporalService, string>,
      logDir,
      restart: async (service) => {
        if (service === 'postgres') return pg.restart();
        await stopOne(service);
        await launch(service);
      },
      kill: async (service) => {
        if (service === 'postgres') return pg.kill();
        await processes[service]?.kill();
      },
      pids: () => ({
        postgres: pg.process.child.pid,
        ...Object.fromEntries(Object.entries(processes).map(([s, p]) => [s, p.child.pid])),
      }),
      stop: async () => {
        await stopOne('ui');
        await Promise.all(TEMPORAL_SERVICES.map(stopOne));
        await pg.stop();
      },
    };
  } catch (err) {
    for (const p of Object.values(processes)) await p.kill();
    await pg.stop();
    throw err;
  }
}
