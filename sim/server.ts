/**
 * The simulator's HTTP server: EC2 Query requests (signed, fault-injected, throttled, dispatched to the
 * action handlers) and the control API under `/_sim/`. Wires the model, the upload poller and the
 * state file together.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { SimConfig } from './config';
import { DEFAULT_CONFIG, mergeConfig } from './config';
import { handleControl, isControlRequest } from './control';
import { startPoller } from './conversion/poller';
import { FaultInjector } from './faults/fault-injector';
import { RequestLimits } from './limits/request-limits';
import { Ec2Model } from './model/ec2-model';
import { Ec2Error } from './model/errors';
import { emptyState } from './model/types';
import { route } from './protocol/dispatch';
import { MESSAGES, renderError, statusFor } from './protocol/errors';
import { parseRequest } from './protocol/request';
import { credentialScopeOf, verifySigV4 } from './protocol/sigv4';
import { answerSts, stsError } from './protocol/sts';
import { renderResponse } from './protocol/xml';
import { StateFile } from './state-file';

export interface SimulatorOptions {
  /** @default 127.0.0.1 */
  host?: string;
  /** 0 = a free port. @default 0 */
  port?: number;
  /** Persist state here (atomically, shortly after each change) and load it at start. */
  stateFile?: string;
  /** @default vmconvoy-local */
  accessKeyId?: string;
  /** @default vmconvoy-local-secret */
  secretAccessKey?: string;
  /** @default us-east-1 */
  region?: string;
  /** A partial config applied over the defaults (see sim/config.ts). */
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

/** Request bodies above this are refused (EC2 Query requests are small). */
const MAX_BODY = 1024 * 1024;
const XML_TYPE = 'text/xml;charset=UTF-8';

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const now = opts.now ?? Date.now;
  const host = opts.host ?? '127.0.0.1';
  const region = opts.region ?? 'us-east-1';
  const creds = {
    accessKeyId: opts.accessKeyId ?? 'vmconvoy-local',
    secretAccessKey: opts.secretAccessKey ?? 'vmconvoy-local-secret',
    region,
  };
  let config = opts.config === undefined ? DEFAULT_CONFIG : mergeConfig(DEFAULT_CONFIG, opts.config);
  const getConfig = (): SimConfig => config;
  const stateFile = opts.stateFile ? new StateFile(opts.stateFile) : undefined;
  const state = (await stateFile?.load()) ?? emptyState();
  const model = new Ec2Model(state, now, getConfig, () => stateFile?.saveSoon(state));
  model.homeRegion = region;
  const faults = new FaultInjector(getConfig);
  const limits = new RequestLimits(getConfig, now);
  const poller = startPoller(model, getConfig, () => faults.roll());
  const hanging = new Set<http.ServerResponse>();

  const configure = (patch: unknown): SimConfig => {
    config = mergeConfig(config, patch);
    limits.reconfigure();
    return config;
  };
  const reset = (): void => {
    model.reset();
    limits.reset();
    faults.reset();
  };

  const send = (
    res: http.ServerResponse,
    status: number,
    requestId: string,
    body: string,
    contentType = XML_TYPE
  ): void => {
    res.writeHead(status, {
      'content-type': contentType,
      'x-amzn-requestid': requestId,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };
  const sendError = (res: http.ServerResponse, requestId: string, code: string, message: string): void =>
    send(res, statusFor(code), requestId, renderError(code, message, requestId));

  /** The secret and account of an access key: the simulator's own, or one the config adds. */
  const signerOf = (accessKeyId: string): { secretAccessKey: string; accountId: string } | undefined =>
    accessKeyId === creds.accessKeyId
      ? { secretAccessKey: creds.secretAccessKey, accountId: config.accounts.defaultAccountId }
      : Object.prototype.hasOwnProperty.call(config.accounts.keys, accessKeyId)
        ? config.accounts.keys[accessKeyId]
        : undefined;

  const handleEc2 = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> => {
    const requestId = randomUUID();
    const request = parseRequest(req, body);
    let action: string;
    let handler;
    let version: string;
    // --- accounts (issue 20): the key names the account, the credential scope the Region and service.
    let caller: { accountId: string; region: string };
    let service = 'ec2';
    try {
      const scope = credentialScopeOf(request);
      const signer = signerOf(scope.accessKeyId);
      service = scope.service === 'sts' ? 'sts' : 'ec2';
      if (!signer) {
        if (service === 'sts') {
          const answer = stsError(
            403,
            'InvalidClientTokenId',
            'The security token included in the request is invalid.',
            requestId
          );
          return send(res, answer.status, requestId, answer.body);
        }
        throw new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials');
      }
      // One endpoint serves every Region the config names; another Region's scope is refused as before.
      const served = scope.region === region || config.accounts.regions.includes(scope.region);
      verifySigV4(request, {
        accessKeyId: scope.accessKeyId,
        secretAccessKey: signer.secretAccessKey,
        region: served ? scope.region : region,
        service,
      });
      caller = { accountId: signer.accountId, region: scope.region };
      if (service === 'sts') {
        const answer = answerSts(
          request.params,
          { accessKeyId: scope.accessKeyId, accountId: caller.accountId },
          requestId
        );
        model.countCall('sts:GetCallerIdentity');
        return send(res, answer.status, requestId, answer.body);
      }
      ({ action, handler, version } = route(request.params));
    } catch (err) {
      if (err instanceof Ec2Error) {
        if (service === 'sts') {
          const answer = stsError(403, 'SignatureDoesNotMatch', err.message, requestId);
          return send(res, answer.status, requestId, answer.body);
        }
        return sendError(res, requestId, err.code, err.message);
      }
      throw err;
    }
    // --- end accounts
    model.countCall(action);
    if (config.faults.unauthorizedActions.includes(action))
      return sendError(res, requestId, 'UnauthorizedOperation', MESSAGES.unauthorized);

    const fault = faults.pick(action);
    switch (fault) {
      case 'connectionReset':
        req.socket.destroy();
        return;
      case 'throttle':
        return sendError(res, requestId, 'RequestLimitExceeded', MESSAGES.throttled);
      case 'internalError':
        return sendError(res, requestId, 'InternalError', MESSAGES.internal);
      case 'unavailable':
        return sendError(res, requestId, 'Unavailable', MESSAGES.unavailable);
      case 'hang':
        // Headers and the start of a body, then nothing: the client must time out.
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        res.writeHead(200, { 'content-type': XML_TYPE, 'x-amzn-requestid': requestId });
        res.write('<?xml version="1.0" encoding="UTF-8"?>\n<');
        return;
      case 'slowResponse':
        await new Promise((resolve) => setTimeout(resolve, config.faults.slowResponseMs));
        break;
      default:
        break;
    }
    if (!limits.tryTake(action)) {
      model.countThrottled(action);
      return sendError(res, requestId, 'RequestLimitExceeded', MESSAGES.throttled);
    }

    let result: Record<string, unknown>;
    try {
      result = model.asCaller(caller, () => handler({ params: request.params, model, region: caller.region, config }));
    } catch (err) {
      if (err instanceof Ec2Error) return sendError(res, requestId, err.code, err.message);
      return sendError(res, requestId, 'InternalError', `${MESSAGES.internal} (${(err as Error).message})`);
    }
    if (fault === 'lostImportResponse') {
      // The task exists now; the caller never hears of it.
      req.socket.destroy();
      return;
    }
    const xml = renderResponse(action, requestId, result, version);
    switch (fault) {
      case 'malformedXml':
        return send(res, 200, requestId, `${xml.slice(0, Math.floor(xml.length / 2))}<<&&</`);
      case 'wrongContentType':
        return send(
          res,
          200,
          requestId,
          '<html><head><title>503</title></head><body>Gateway maintenance</body></html>',
          'text/html'
        );
      case 'oversizedBody':
        // Valid-looking XML with an unknown element of faults.oversizedBodyBytes (default 20 MiB).
        return send(
          res,
          200,
          requestId,
          xml.replace('</requestId>', `</requestId><padding>${'x'.repeat(config.faults.oversizedBodyBytes)}</padding>`)
        );
      default:
        return send(res, 200, requestId, xml);
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (isControlRequest(req))
        return handleControl({ model, config: getConfig, configure, reset, region }, req, res, body);
      if (tooLarge) return sendError(res, randomUUID(), 'InvalidRequest', `The request body exceeds ${MAX_BODY} bytes`);
      handleEc2(req, res, body).catch((err: unknown) => {
        if (!res.headersSent)
          sendError(res, randomUUID(), 'InternalError', `${MESSAGES.internal} (${(err as Error).message})`);
      });
    });
  });
  // Keep idle connections longer than clients do (AWS endpoints: about a minute). With Node's 5 s
  // default, a client that was busy for a few seconds reuses a socket the server has just closed and
  // gets "other side closed" for a request the simulator never saw.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    model,
    config: getConfig,
    configure,
    close: () =>
      (closing ??= (async () => {
        poller.stop();
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await stateFile?.flush(state);
      })()),
  };
}
