/** A Temporal client for the CLI; an unreachable server is exit code 3 with the address tried and what to do. */
import { Client, Connection } from '@temporalio/client';
import { dataConverterFromEnv } from '../common/temporal/payload-codec';
import { temporalConnectSettings } from '../common/temporal/connection';
import { ExitError } from './errors';

const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;

/** A gRPC failure meaning the server cannot be reached (as opposed to a refused request). */
export function isUnreachable(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === GRPC_UNAVAILABLE || e.code === GRPC_DEADLINE_EXCEEDED) return true;
  }
  return false;
}

export function unreachableError(env: NodeJS.ProcessEnv, err: unknown): ExitError {
  const { address } = temporalConnectSettings(env);
  return new ExitError(
    3,
    `Temporal is unreachable at ${address} (${(err as Error).message}).\n` +
      'Start a local environment with `vmconvoy dev` (or `npx vmconvoy dev` in the repository), or set TEMPORAL_ADDRESS to your server.'
  );
}

export interface CliConnection {
  client: Client;
  connection: Connection;
  namespace: string;
  close(): Promise<void>;
}

export async function connectClient(env: NodeJS.ProcessEnv): Promise<CliConnection> {
  const settings = temporalConnectSettings(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connectionOptions, connectTimeout: '5 seconds' });
  } catch (err) {
    throw unreachableError(env, err);
  }
  const client = new Client({ connection, namespace: settings.namespace, dataConverter: dataConverterFromEnv(env) });
  return { client, connection, namespace: settings.namespace, close: () => connection.close() };
}
