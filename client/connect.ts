/** A Temporal client for the CLI; an unreachable server is exit code 3 with what to do. */
import { Client, Connection } from '@temporalio/client';
import { temporalConnectSettings } from '../worker/temporal-connection';
import { dataConverterFromEnv } from '../worker/payload-codec';
import { ExitError } from './errors';

export async function connectClient(env: NodeJS.ProcessEnv): Promise<{ client: Client; connection: Connection; namespace: string; close: () => Promise<void> }> {
  const settings = temporalConnectSettings(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connectionOptions, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new ExitError(
      3,
      `Temporal is unreachable at ${settings.address} (${(err as Error).message}).\nStart a local environment with \`vmconvoy dev\`, or set TEMPORAL_ADDRESS.`
    );
  }
  const client = new Client({ connection, namespace: settings.namespace, dataConverter: dataConverterFromEnv(env) });
  return { client, connection, namespace: settings.namespace, close: () => connection.close() };
}
