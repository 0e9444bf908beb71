/** `vmconvoy sim ...`: the EC2 VM-Import simulator's own command line (sim/main.ts), arguments passed on. */
export async function simCommand(args: string[]): Promise<void> {
  const { runSimulatorCli } = await import('../../sim/main');
  await runSimulatorCli(args);
}
