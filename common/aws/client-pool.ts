/**
 * Accounts and Regions (issue 20): the worker's AWS clients per (profile, Region) a VM names, the account
 * behind each (STS GetCallerIdentity), and the shared files and staging buckets they need.
 */
import path from 'node:path';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { getHomeDir, loadSharedConfigFiles } from '@smithy/core/config';
import type { AwsConfig } from '../config';
import { awsNetworkLimitsOf } from '../config';
import type { AwsClients } from './clients';
import { createAwsClients, credentialsOf, destroyAwsClients } from './clients';
import type { AwsAccount, AwsTarget } from './targets';
import { targetKey } from './targets';

/** A row's profile or Region this worker cannot serve: the operator must fix the row or the worker's setup. */
export class AwsTargetError extends Error {
  override name = 'AwsTargetError';
}

/** The shared files the SDK reads profiles from (its own defaults unless AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE). */
export function sharedFilesOf(config: Pick<AwsConfig, 'sharedConfigFile' | 'sharedCredentialsFile'>): {
  configFilepath: string;
  filepath: string;
} {
  return {
    configFilepath: config.sharedConfigFile ?? path.join(getHomeDir(), '.aws', 'config'),
    filepath: config.sharedCredentialsFile ?? path.join(getHomeDir(), '.aws', 'credentials'),
  };
}

/** Throws AwsTargetError unless `profile` is a section of the shared config or credentials file. */
export async function checkProfile(
  config: Pick<AwsConfig, 'sharedConfigFile' | 'sharedCredentialsFile'>,
  profile: string
): Promise<void> {
  const files = sharedFilesOf(config);
  // The SDK's own parser: `[profile NAME]` in the config file and `[NAME]` in the credentials file.
  const found = await loadSharedConfigFiles({ ...files, ignoreCache: true });
  if (Object.prototype.hasOwnProperty.call(found.configFile, profile)) return;
  if (Object.prototype.hasOwnProperty.call(found.credentialsFile, profile)) return;
  throw new AwsTargetError(
    `AWS profile "${profile}" is not defined: looked for [profile ${profile}] in ${files.configFilepath} and [${profile}] in ${files.filepath}. ` +
      'Add it there (on every worker host), set AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE, or fix the aws_profile column.'
  );
}

/** The staging bucket of a Region: VMCONVOY_BUCKET for AWS_REGION, VMCONVOY_REGION_BUCKETS for the others. */
export function bucketFor(config: AwsConfig, region: string): string {
  const bucket = config.regionBuckets?.[region] ?? (region === config.region ? config.bucket : undefined);
  if (bucket) return bucket;
  throw new AwsTargetError(
    `no staging bucket for Region ${region}: VM Import reads the image from a bucket in the Region it imports into. ` +
      `Create one there and add it to VMCONVOY_REGION_BUCKETS (e.g. ${region}=my-vmconvoy-${region}) on the workers and the CLI.`
  );
}

export interface TargetClients {
  clients: AwsClients;
  region: string;
  bucket: string;
}

/**
 * The worker's AWS clients for each (profile, Region) its VMs name, built on first use and kept: one
 * connection pool per target. The target with neither is the worker's own clients.
 */
export class AwsClientPool {
  private readonly built = new Map<string, TargetClients>();
  private readonly accounts = new Map<string, Promise<AwsAccount>>();

  constructor(
    private readonly config: AwsConfig,
    base?: AwsClients
  ) {
    this.built.set(targetKey(undefined), {
      clients: base ?? createAwsClients(config),
      region: config.region,
      bucket: config.bucket,
    });
  }

  /** The worker's own clients (no profile, AWS_REGION). */
  get base(): TargetClients {
    return this.built.get(targetKey(undefined))!;
  }

  /** One form per target: the worker's Region written or not is the same target. */
  private normal(target: AwsTarget | undefined): AwsTarget | undefined {
    const region = target?.region ?? this.config.region;
    if (target?.profile === undefined && region === this.config.region) return undefined;
    return target?.profile === undefined ? { region } : { profile: target.profile, region };
  }

  async of(target: AwsTarget | undefined): Promise<TargetClients> {
    const normal = this.normal(target);
    const region = normal?.region ?? this.config.region;
    const key = targetKey(normal);
    const known = this.built.get(key);
    if (known) return known;
    if (normal?.profile !== undefined) await checkProfile(this.config, normal.profile);
    const bucket = bucketFor(this.config, region);
    const regional: AwsConfig = {
      ...this.config,
      region,
      bucket,
      s3Endpoint: this.config.regionS3Endpoints?.[region] ?? this.config.s3Endpoint,
    };
    const credentials =
      normal?.profile === undefined ? undefined : fromIni({ profile: normal.profile, ...sharedFilesOf(this.config) });
    const entry: TargetClients = { clients: createAwsClients(regional, credentials), region, bucket };
    // Two callers may have built at once: keep the first, drop the other's clients.
    const raced = this.built.get(key);
    if (raced) {
      destroyAwsClients(entry.clients);
      return raced;
    }
    this.built.set(key, entry);
    return entry;
  }

  /** The account behind a target (STS GetCallerIdentity with the target's credentials), asked once per pool. */
  accountOf(target: AwsTarget | undefined): Promise<AwsAccount> {
    target = this.normal(target);
    const key = targetKey(target);
    let answer = this.accounts.get(key);
    if (!answer) {
      answer = this.askSts(target);
      this.accounts.set(key, answer);
      answer.catch(() => this.accounts.delete(key));
    }
    return answer;
  }

  private async askSts(target: AwsTarget | undefined): Promise<AwsAccount> {
    const region = target?.region ?? this.config.region;
    if (target?.profile !== undefined) await checkProfile(this.config, target.profile);
    const limits = awsNetworkLimitsOf(this.config);
    const sts = new STSClient({
      region,
      // A stand-in EC2 (the simulator) answers STS too: a config that names one but no STS endpoint (built in
      // code, or from AWS_ENDPOINT_URL_EC2 alone) must not ask the real STS for a local account.
      endpoint: this.config.stsEndpoint ?? this.config.ec2Endpoint,
      credentials:
        target?.profile === undefined
          ? credentialsOf(this.config)
          : fromIni({ profile: target.profile, ...sharedFilesOf(this.config) }),
      maxAttempts: this.config.maxAttempts,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: limits.connectTimeoutMs,
        requestTimeout: limits.ec2TimeoutMs,
        socketTimeout: limits.ec2TimeoutMs,
      }),
    });
    try {
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      if (!identity.Account) throw new Error('STS GetCallerIdentity answered without an account ID');
      return {
        accountId: identity.Account,
        region,
        ...(target?.profile === undefined ? {} : { profile: target.profile }),
      };
    } finally {
      sts.destroy();
    }
  }

  destroy(): void {
    for (const entry of this.built.values()) destroyAwsClients(entry.clients);
    this.built.clear();
  }
}
