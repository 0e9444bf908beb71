/**
 * The cluster scenario at a size a quick run affords (plans.ts REDUCED): 10 VMs, one of each disruption.
 * `npm run test:cluster -- test/cluster/reduced.test.ts` runs it beside the full one; alone:
 * `node --import tsx --test test/cluster/reduced.test.ts`.
 */
import { clusterSuite } from './suite';
import { REDUCED } from './plans';

clusterSuite(`a ${REDUCED.vms}-VM batch across two sites completes through one of each cluster disruption`, REDUCED);
