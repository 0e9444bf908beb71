/**
 * vmconvoy on the production topology (dev/cluster.ts): PostgreSQL, the four Temporal services as separate
 * processes, the Web UI, two site workers and a shared worker. A 60-VM batch in three waves across both
 * sites, with boot checks, while a site worker is killed during an upload, PostgreSQL restarts, the history
 * and matching services are killed and restarted, and the shared worker is scaled from one process to two
 * (plans.ts FULL; scenario.ts). Run by `npm run test:cluster` (not part of `npm test`: it builds the server
 * on first use and takes many minutes); reduced.test.ts is the 10-VM version.
 */
import { clusterSuite } from './suite';
import { FULL } from './plans';

clusterSuite(
  `a ${FULL.vms}-VM batch across two sites completes through a site worker crash, a PostgreSQL restart, history and matching crashes and a second shared worker`,
  FULL
);
