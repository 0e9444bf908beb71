/** The EC2 VM-Import simulator: start one in-process, or run `sim/main.ts` (`vmconvoy sim`). */
export type { Simulator, SimulatorOptions } from './server';
export { startSimulator } from './server';
export type { SimConfig, SimConfigPatch } from './config';
