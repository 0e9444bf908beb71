/**
 * Where the CLI's settings come from: the environment (AWS_*, VMCONVOY_*, TEMPORAL_*), and — when those are
 * unset — the `env.json` a running `vmconvoy dev` wrote (`$VMCONVOY_ENV_FILE` or `.vmconvoy/env.json`), so
 * commands just work against the local environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { VmconvoyConfig } from '../activities/config';
import { loadConfig } from '../activities/config';
import { ExitError } from './errors';

export interface LocalEnvFile {
  temporalAddress: string;
  temporalUiUrl: string;
  s3Endpoint: string;
  ec2Endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function effectiveEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const file = env.VMCONVOY_ENV_FILE ?? path.resolve('.vmconvoy', 'env.json');
  if (!existsSync(file) || (env.AWS_REGION && env.VMCONVOY_BUCKET && env.TEMPORAL_ADDRESS)) return env;
  const local = JSON.parse(readFileSync(file, 'utf8')) as LocalEnvFile;
  return {
    TEMPORAL_ADDRESS: local.temporalAddress,
    VMCONVOY_TEMPORAL_UI: local.temporalUiUrl,
    AWS_REGION: local.region,
    AWS_ENDPOINT_URL_EC2: local.ec2Endpoint,
    AWS_ENDPOINT_URL_S3: local.s3Endpoint,
    AWS_ACCESS_KEY_ID: local.accessKeyId,
    AWS_SECRET_ACCESS_KEY: local.secretAccessKey,
    VMCONVOY_BUCKET: local.bucket,
    ...env,
  };
}

export function cliConfig(env: NodeJS.ProcessEnv): VmconvoyConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    throw new ExitError(1, `${(err as Error).message}\nStart a local environment with \`vmconvoy dev\`, or set the variables (README "Configuration").`);
  }
}

export function uiUrl(env: NodeJS.ProcessEnv): string {
  return (env.VMCONVOY_TEMPORAL_UI ?? 'http://localhost:8233').replace(/\/$/, '');
}
