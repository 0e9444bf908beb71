/**
 * Where the CLI's settings come from: the environment (AWS_*, VMCONVOY_*, TEMPORAL_*), and — when those are
 * unset — the `env.json` a running `vmconvoy dev` wrote (`$VMCONVOY_ENV_FILE` or `.vmconvoy/env.json`), so
 * commands just work against the local environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { VmconvoyConfig } from '../common/config';
import { loadConfig } from '../common/config';
import { ExitError } from './errors';
import { quotaWorkflowId } from '../common/workflow-ids';

export interface LocalEnvFile {
  temporalAddress: string;
  temporalUiUrl: string;
  s3Endpoint: string;
  ec2Endpoint: string;
  bucket: string;
  simControlUrl?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Variables that say "use this Temporal / these AWS endpoints": when any is set, env.json is not read. */
const TARGET_VARS = [
  'TEMPORAL_ADDRESS',
  'VMCONVOY_BUCKET',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_EC2',
  'AWS_ENDPOINT_URL_S3',
];

/** The environment a local environment's env.json stands for. */
export function envFromLocalFile(local: LocalEnvFile): NodeJS.ProcessEnv {
  return {
    TEMPORAL_ADDRESS: local.temporalAddress,
    VMCONVOY_TEMPORAL_UI: local.temporalUiUrl,
    AWS_REGION: local.region,
    AWS_ENDPOINT_URL_EC2: local.ec2Endpoint,
    AWS_ENDPOINT_URL_S3: local.s3Endpoint,
    AWS_ACCESS_KEY_ID: local.accessKeyId,
    AWS_SECRET_ACCESS_KEY: local.secretAccessKey,
    VMCONVOY_BUCKET: local.bucket,
  };
}

/**
 * The environment the commands run with: as given when it names a Temporal server, a bucket or AWS
 * endpoints; otherwise, when `$VMCONVOY_ENV_FILE` (default `.vmconvoy/env.json`) exists, the local
 * environment it describes (its endpoints and local credentials win over AWS_REGION/AWS_ACCESS_KEY_ID set
 * for real AWS).
 */
export function effectiveEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (TARGET_VARS.some((name) => env[name])) return env;
  const file = env.VMCONVOY_ENV_FILE || path.resolve('.vmconvoy', 'env.json');
  if (!existsSync(file)) return env;
  let local: LocalEnvFile;
  try {
    local = JSON.parse(readFileSync(file, 'utf8')) as LocalEnvFile;
  } catch (err) {
    throw new ExitError(
      1,
      `${file} is not a local environment file (${(err as Error).message}); run \`vmconvoy dev\` again to rewrite it`
    );
  }
  return { ...env, ...envFromLocalFile(local) };
}

export function cliConfig(env: NodeJS.ProcessEnv): VmconvoyConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    throw new ExitError(
      1,
      `${(err as Error).message}\nStart a local environment with \`vmconvoy dev\`, or set the variables (README "Configuration").`
    );
  }
}

export function uiUrl(env: NodeJS.ProcessEnv): string {
  return (env.VMCONVOY_TEMPORAL_UI ?? 'http://127.0.0.1:8233').replace(/\/$/, '');
}

/** The batch's page in the Temporal Web UI. */
export function batchUiLink(env: NodeJS.ProcessEnv, namespace: string, batch: string): string {
  return `${uiUrl(env)}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(batch)}`;
}

/**
 * The conversion-quota workflow shared by every batch that imports into the same EC2 endpoint and region
 * (EC2 allows about 5 concurrent conversions per account and region).
 */
export function quotaWorkflowIdFor(aws: { ec2Endpoint?: string; region: string }): string {
  return quotaWorkflowId(aws.ec2Endpoint ?? 'aws', aws.region);
}
