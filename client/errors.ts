/** Exit codes: 0 ok; 1 invalid input or usage; 2 the batch ended with failed VMs; 3 Temporal unreachable. */
export class ExitError extends Error {
  constructor(
    readonly code: 1 | 2 | 3,
    message: string
  ) {
    super(message);
    this.name = 'ExitError';
  }
}
