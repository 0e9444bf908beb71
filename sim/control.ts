/**
 * The control API under `/_sim/` (unsigned, never fault-injected):
 *   GET  /_sim/state   tasks, instances, volumes and per-action call counts (JSON)
 *   GET  /_sim/config  the whole config
 *   POST /_sim/config  a partial config, deep-merged and validated (400 with the reason); returns the whole config
 *   POST /_sim/reset   forget every resource and counter
 *   GET  /_sim/network  zones, VPCs, subnets, security groups (the Region's default until seeded)
 *   POST /_sim/network  seed them: each list given replaces that list (400 with every inconsistency)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimConfig } from './config';
import type { Ec2Model } from './model/ec2-model';
import { applyNetworkPatch } from './model/network-state';
import { defaultNetwork } from './protocol/actions/vpc';
import { stateView } from './state-view';

export interface ControlDeps {
  model: Ec2Model;
  config(): SimConfig;
  configure(patch: unknown): SimConfig;
  reset(): void;
  /** The Region, for its default network. @default us-east-1 */
  region?: string;
}

export const CONTROL_PREFIX = '/_sim/';

export function isControlRequest(req: IncomingMessage): boolean {
  return (req.url ?? '').startsWith(CONTROL_PREFIX);
}

export function handleControl(deps: ControlDeps, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const route = `${req.method ?? 'GET'} ${(req.url ?? '').split('?')[0]}`;
  const json = (status: number, value: unknown): void => {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  };
  const network = () => deps.model.state.network ?? defaultNetwork(deps.region ?? 'us-east-1');
  try {
    switch (route) {
      case 'GET /_sim/state':
        deps.model.advance();
        return json(200, stateView(deps.model));
      case 'GET /_sim/config':
        return json(200, deps.config());
      case 'POST /_sim/config':
      case 'POST /_sim/network': {
        let patch: unknown = {};
        if (body.length > 0) {
          try {
            patch = JSON.parse(body.toString('utf8'));
          } catch (err) {
            return json(400, { error: `the body is not JSON: ${(err as Error).message}` });
          }
        }
        if (route === 'POST /_sim/config') return json(200, deps.configure(patch));
        deps.model.setNetwork(applyNetworkPatch(network(), patch));
        return json(200, network());
      }
      case 'GET /_sim/network':
        return json(200, network());
      case 'POST /_sim/reset':
        deps.reset();
        return json(200, { reset: true });
      default:
        return json(404, { error: 'GET /_sim/state, GET|POST /_sim/config, POST /_sim/reset, GET|POST /_sim/network' });
    }
  } catch (err) {
    json(400, { error: (err as Error).message });
  }
}
