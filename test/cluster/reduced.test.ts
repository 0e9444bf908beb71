/**
 * The cluster scenario at a smaller size (plans.ts REDUCED): 10 VMs in two waves across both sites, one of
 * each disruption. Not in `npm test`: it took 2 min 51 s and 3 min 0 s (cluster start, batch, checks, stop)
 * on the shared 2-core machine at load 28-30, the edge of what a 15-minute suite can give one file, and it
 * needs the Temporal server built from source (minutes on first use). Run it with
 * `npm run test:cluster -- test/cluster/reduced.test.ts` (beside the full one) or alone with
 * `node --import tsx --test test/cluster/reduced.test.ts`.
 */
import { clusterSuite } from './suite';
import { REDUCED } from './plans';

clusterSuite(`a ${REDUCED.vms}-VM batch across two sites completes through one of each cluster disruption`, REDUCED);
