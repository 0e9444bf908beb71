/**
 * The simulator's HTTP server: EC2 Query requests (signed, throttled, fault-injected, dispatched to the
 * action handlers) and the control API under `/_sim/`. Also runs the poller that plays EC2 waiting for
 * each task's manifest and parts, and saves state to the state file.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { SimConfig } from './config';
import { DEFAULT_CONFIG, mergeConfig } from './config';
import { inspectUpload } from './conversion/inspect-upload';
import { FaultInjector } from './faults/fault-injector';
import { MUTATING_ACTIONS, TokenBucket } from './limits/token-bucket';
import { Ec2Model } from './model/ec2-model';
import { Ec2Error } from './model/errors';
import type { SimState } from './model/types';
import { conversionTaskActions } from './protocol/actions/conversion-tasks';
import type { ActionHandler } from './protocol/actions/context';
import { instanceActions } from './protocol/actions/instances';
import { QueryParams } from './protocol/query';
import { verifySigV4 } from './protocol/sigv4';
import { renderError, renderResponse, statusFor } from './protocol/xml';
import { StateFile } from './state-file';
import { stateView } from './state-view';

export interface SimulatorOptions {
  host?: string;
  /** 0 = a free port. */
  port?: number;
  stateFile?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  /** A partial config applied over the defaults. */
  config?: unknown;
  /** The clock (tests drive time). @default Date.now */
  now?: () => number;
}

export interface Simulator {
  url: string;
  model: Ec2Model;
  config(): SimConfig;
  configure(patch: unknown): SimConfig;
  close(): Promise<void>;
}

const ACTIONS: Record<string, ActionHandler> = { ...conversionTaskActions, ...instanceActions };
const VERSIONS = new Set(['2016-11-15', '2013-02-01']);
const MAX_BODY = 1024 * 1024;

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const now = opts.now ?? Date.now;
  const region = opts.region ?? 'us-east-1';
  const creds = { accessKeyId: opts.accessKeyId ?? 'vmconvoy-local', secretAccessKey: opts.secretAccessKey ?? 'vmconvoy-local-secret', region };
  let config = opts.config === undefined ? DEFAULT_CONFIG : mergeConfig(DEFAULT_CONFIG, opts.config);
  const stateFile = opts.stateFile ? new StateFile(opts.stateFile) : undefined;
  const state: SimState = (await stateFile?.load()) ?? { tasks: [], instances: [], volumes: [], tags: {}, calls: {} };
  const model = new Ec2Model(state, now, () => config, () => stateFile?.saveSoon(state));
  const faults = new FaultInjector(() => config);
  const buckets = {
    mutating: new TokenBucket(config.limits.mutatingBurst, config.limits.mutatingRefillPerSecond, now),
    describe: new TokenBucket(config.limits.describeBurst, config.limits.describeRefillPerSecond, now),
  };
  const hanging = new Set<http.ServerResponse>();

  const configure = (patch: unknown): SimConfig => {
    config = mergeConfig(config, patch);
    buckets.mutating.reconfigure(config.limits.mutatingBurst, config.limits.mutatingRefillPerSecond);
    buckets.describe.reconfigure(config.limits.describeBurst, config.limits.describeRefillPerSecond);
    return config;
  };

  // -------------------------------------------------------------------------------------------------
  // EC2 waiting for uploads
  // -------------------------------------------------------------------------------------------------
  const inspecting = new Set<string>();
  let pollTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const poll = async (): Promise<void> => {
    model.advance();
    await Promise.all(
      model
        .pendingTasks()
        .filter((t) => !inspecting.has(t.id))
        .map(async (task) => {
          inspecting.add(task.id);
          try {
            const result = await inspectUpload(task);
            if (result.kind === 'rejected') model.rejectTask(task.id, result.message);
            else if (result.kind === 'ready') {
              const awsCancel = config.faults.awsCancelRate > 0 && faults.roll() < config.faults.awsCancelRate;
              const failure = result.failMessage
                ? { at: 0.5, message: result.failMessage }
                : awsCancel
                  ? { at: 0.3, message: 'SERVER_ERROR : conversion : AWS initiated task cancellation' }
                  : undefined;
              model.startConversion(task.id, failure);
            }
          } finally {
            inspecting.delete(task.id);
          }
        })
    );
  };
  const schedulePoll = (): void => {
    if (closed) return;
    pollTimer = setTimeout(() => {
      void poll().finally(schedulePoll);
    }, config.speed.pendingPollMs);
  };
  schedulePoll();

  // -------------------------------------------------------------------------------------------------
  // HTTP
  // -------------------------------------------------------------------------------------------------
  const sendXml = (res: http.ServerResponse, status: number, requestId: string, body: string, contentType = 'text/xml;charset=UTF-8'): void => {
    res.writeHead(status, { 'content-type': contentType, 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const sendError = (res: http.ServerResponse, requestId: string, code: string, message: string): void =>
    sendXml(res, statusFor(code), requestId, renderError(code, message, requestId));

  const handleControl = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void => {
    const route = `${req.method} ${(req.url ?? '').split('?')[0]}`;
    const json = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    try {
      if (route === 'GET /_sim/state') {
        model.advance();
        json(200, stateView(model));
      } else if (route === 'GET /_sim/config') json(200, config);
      else if (route === 'POST /_sim/config') json(200, configure(body.length > 0 ? JSON.parse(body.toString('utf8')) : {}));
      else if (route === 'POST /_sim/reset') {
        Object.assign(state, { tasks: [], instances: [], volumes: [], tags: {}, calls: {} });
        stateFile?.saveSoon(state);
        json(200, { reset: true });
      } else json(404, { error: 'GET /_sim/state, GET|POST /_sim/config, POST /_sim/reset' });
    } catch (err) {
      json(400, { error: (err as Error).message });
    }
  };

  const handleEc2 = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> => {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = QueryParams.parse(req.method === 'POST' && body.length > 0 ? body.toString('utf8') : url.search.slice(1));
    try {
      const query: Record<string, string> = {};
      url.searchParams.forEach((v, k) => (query[k] = v));
      await verifySigV4({ method: req.method ?? 'GET', path: url.pathname, query, headers: req.headers, body }, creds);
    } catch (err) {
      if (err instanceof Ec2Error) return sendError(res, requestId, err.code, err.message);
      throw err;
    }
    const action = params.get('Action') ?? '';
    state.calls[action] = (state.calls[action] ?? 0) + 1;
    const handler = ACTIONS[action];
    if (!handler) return sendError(res, requestId, 'InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
    const version = params.get('Version');
    if (version !== undefined && !VERSIONS.has(version)) {
      return sendError(res, requestId, 'InvalidParameterValue', `Version ${version} is not supported (use 2016-11-15 or 2013-02-01)`);
    }

    const fault = faults.pick(action);
    switch (fault) {
      case 'connectionReset':
        req.socket.destroy();
        return;
      case 'throttle':
        return sendError(res, requestId, 'RequestLimitExceeded', 'Request limit exceeded.');
      case 'internalError':
        return sendError(res, requestId, 'InternalError', 'An internal error has occurred');
      case 'unavailable':
        return sendError(res, requestId, 'Unavailable', 'The service is unavailable. Please try again shortly.');
      case 'hang':
        hanging.add(res);
        res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
        res.write('<?xml version="1.0" encoding="UTF-8"?>\n<');
        return;
      case 'slowResponse':
        await new Promise((r) => setTimeout(r, config.faults.slowResponseMs));
        break;
      default:
        break;
    }
    const bucket = MUTATING_ACTIONS.has(action) ? buckets.mutating : buckets.describe;
    if (!bucket.tryTake()) return sendError(res, requestId, 'RequestLimitExceeded', 'Request limit exceeded.');

    let result: Record<string, unknown>;
    try {
      result = handler({ params, model, region, config });
    } catch (err) {
      if (err instanceof Ec2Error) return sendError(res, requestId, err.code, err.message);
      return sendError(res, requestId, 'InternalError', `An internal error has occurred (${(err as Error).message})`);
    }
    if (fault === 'lostImportResponse') {
      // The task exists now; the caller never hears of it.
      req.socket.destroy();
      return;
    }
    const xml = renderResponse(action, requestId, result);
    if (fault === 'malformedXml') return sendXml(res, 200, requestId, xml.slice(0, Math.floor(xml.length / 2)) + '<<&&');
    if (fault === 'wrongContentType') return sendXml(res, 200, requestId, '<html><body>Gateway maintenance</body></html>', 'text/html');
    if (fault === 'oversizedBody') {
      return sendXml(res, 200, requestId, xml.replace('</requestId>', `</requestId><padding>${'x'.repeat(20 * 1024 * 1024)}</padding>`));
    }
    sendXml(res, 200, requestId, xml);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if ((req.url ?? '').startsWith('/_sim/')) return handleControl(req, res, body);
      handleEc2(req, res, body).catch((err: unknown) => {
        if (!res.headersSent) sendError(res, randomUUID(), 'InternalError', (err as Error).message);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    model,
    config: () => config,
    configure,
    close: async () => {
      closed = true;
      clearTimeout(pollTimer);
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stateFile?.flush(state);
    },
  };
}
