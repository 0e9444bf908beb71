/**
 * Temporal connection settings from the standard TEMPORAL_* environment variables and profiles
 * (@temporalio/envconfig: address, namespace, TLS, API key), shared by the worker and the CLI.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export interface TemporalConnectSettings {
  address: string;
  namespace: string;
  connectionOptions: NativeConnectionOptions;
}

export function temporalConnectSettings(env: NodeJS.ProcessEnv = process.env): TemporalConnectSettings {
  const loaded = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  const address = loaded.connectionOptions.address ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  return {
    address,
    namespace: loaded.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    connectionOptions: { ...loaded.connectionOptions, address },
  };
}
