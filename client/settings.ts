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

/** True when a URL or `host:port` names this machine's loopback interface. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  let host: string;
  try {
    host = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `tcp://${address}`).hostname;
  } catch {
    return false;
  }
  host = host.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Every address an env.json points the CLI and a worker at. */
function endpointsOf(local: LocalEnvFile): Array<string | undefined> {
  return [local.temporalAddress, local.temporalUiUrl, local.s3Endpoint, local.ec2Endpoint, local.simControlUrl];
}

/**
 * The environment the commands run with: as given when it names a Temporal server, a bucket or AWS
 * endpoints. Otherwise a local environment's env.json stands in for them (its endpoints and local
 * credentials win over AWS_REGION/AWS_ACCESS_KEY_ID set for real AWS):
 * - the file named by `--env FILE` (`envFile`) or `$VMCONVOY_ENV_FILE`, whatever it points at;
 * - else `.vmconvoy/env.json` in the current directory, only when every endpoint in it is on loopback: a
 *   file in a directory the operator merely `cd`s into (a checkout, a shared folder) must not send their
 *   commands and a worker to someone else's servers.
 * The operator's AWS_SESSION_TOKEN (and AWS_PROFILE) go: they belong to real AWS credentials, not to the
 * file's local keys, and must not travel with requests to the file's endpoints.
 */
export function effectiveEnv(env: NodeJS.ProcessEnv = process.env, envFile?: string): NodeJS.ProcessEnv {
  const named = envFile || env.VMCONVOY_ENV_FILE;
  if (!envFile && TARGET_VARS.some((name) => env[name])) return env;
  const file = named || path.resolve('.vmconvoy', 'env.json');
  if (!existsSync(file)) {
    if (envFile) throw new ExitError(1, `--env ${envFile}: no such file`);
    return env;
  }
  let local: LocalEnvFile;
  try {
    local = JSON.parse(readFileSync(file, 'utf8')) as LocalEnvFile;
  } catch (err) {
    throw new ExitError(
      1,
      `${file} is not a local environment file (${(err as Error).message}); run \`vmconvoy dev\` again to rewrite it`
    );
  }
  if (!named && !endpointsOf(local).every((e) => e === undefined || isLoopback(e))) {
    throw new ExitError(
      1,
      `${file} points at endpoints off this machine (${endpointsOf(local)
        .filter((e) => e && !isLoopback(e))
        .join(
          ', '
        )}); it is read from the current directory only when every endpoint is on loopback. Name it with --env ${file} (or VMCONVOY_ENV_FILE) if you trust it, or set TEMPORAL_ADDRESS / AWS_ENDPOINT_URL_* yourself.`
    );
  }
  const merged: NodeJS.ProcessEnv = { ...env, ...envFromLocalFile(local) };
  delete merged.AWS_SESSION_TOKEN;
  delete merged.AWS_SECURITY_TOKEN;
  delete merged.AWS_PROFILE;
  return merged;
}

/** `--env FILE` / `--env=FILE` taken out of the arguments (it applies to every command). */
export function takeEnvOption(argv: string[]): { argv: string[]; envFile?: string } {
  const rest: string[] = [];
  let envFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--env' && i + 1 < argv.length) envFile = argv[++i];
    else if (arg.startsWith('--env=')) envFile = arg.slice('--env='.length);
    else rest.push(arg);
  }
  return { argv: rest, envFile };
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
