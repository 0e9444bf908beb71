/**
 * The request parameters each action takes, as EC2's Query protocol spells them (botocore's EC2 model,
 * 2016-11-15: member names by their query names, lists as `Name.N`, `*` = required there), plus the
 * 2013-02-01 spellings of ImportInstance that the current model changed (`LaunchSpecification.UserData` as a
 * plain string, `LaunchSpecification.Monitoring.Enabled`). Anything else is `UnknownParameter`.
 */

export type Shape =
  | { kind: 'string' | 'boolean' | 'integer' }
  | { kind: 'struct'; members: Record<string, Shape>; required: string[] }
  | { kind: 'list'; member: Shape }
  /** A scalar or a structure under the same name (a spelling that changed between API versions). */
  | { kind: 'either'; scalar: Shape; struct: Shape };

const str: Shape = { kind: 'string' };
const bool: Shape = { kind: 'boolean' };
const int: Shape = { kind: 'integer' };
const list = (member: Shape): Shape => ({ kind: 'list', member });
const struct = (members: Record<string, Shape>, required: string[] = []): Shape & { kind: 'struct' } => ({
  kind: 'struct',
  members,
  required,
});

/** Query-string auth and the two every request has. */
export const COMMON_PARAMETERS: ReadonlySet<string> = new Set([
  'Action',
  'Version',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
]);

const filters = list(struct({ Name: str, Value: list(str) }));
const diskImageDetail = struct({ Format: str, Bytes: int, ImportManifestUrl: str }, [
  'Format',
  'Bytes',
  'ImportManifestUrl',
]);
const volumeDetail = struct({ Size: int }, ['Size']);
const placement = struct({
  AvailabilityZone: str,
  AvailabilityZoneId: str,
  Affinity: str,
  GroupName: str,
  GroupId: str,
  PartitionNumber: int,
  HostId: str,
  Tenancy: str,
  SpreadDomain: str,
  HostResourceGroupArn: str,
});

export const INPUT_SHAPES: Readonly<Record<string, Shape & { kind: 'struct' }>> = {
  ImportInstance: struct(
    {
      DryRun: bool,
      Description: str,
      Platform: str,
      LaunchSpecification: struct({
        Architecture: str,
        GroupName: list(str),
        GroupId: list(str),
        AdditionalInfo: str,
        UserData: { kind: 'either', scalar: str, struct: struct({ Data: str }) },
        InstanceType: str,
        Placement: placement,
        Monitoring: { kind: 'either', scalar: bool, struct: struct({ Enabled: bool }) },
        SubnetId: str,
        InstanceInitiatedShutdownBehavior: str,
        PrivateIpAddress: str,
      }),
      DiskImage: list(struct({ Description: str, Image: diskImageDetail, Volume: volumeDetail })),
    },
    ['Platform']
  ),
  ImportVolume: struct(
    {
      DryRun: bool,
      AvailabilityZone: str,
      AvailabilityZoneId: str,
      Description: str,
      Image: diskImageDetail,
      Volume: volumeDetail,
    },
    ['Image', 'Volume']
  ),
  DescribeConversionTasks: struct({ DryRun: bool, ConversionTaskId: list(str) }),
  CancelConversionTask: struct({ DryRun: bool, ConversionTaskId: str, ReasonMessage: str }, ['ConversionTaskId']),
  DescribeInstances: struct({
    DryRun: bool,
    InstanceId: list(str),
    Filter: filters,
    MaxResults: int,
    NextToken: str,
    IncludeManagedResources: bool,
  }),
  StartInstances: struct({ DryRun: bool, InstanceId: list(str), AdditionalInfo: str }, ['InstanceId']),
  StopInstances: struct({ DryRun: bool, InstanceId: list(str), Hibernate: bool, SkipOsShutdown: bool, Force: bool }, [
    'InstanceId',
  ]),
  TerminateInstances: struct({ DryRun: bool, InstanceId: list(str), SkipOsShutdown: bool, Force: bool }, [
    'InstanceId',
  ]),
  DescribeInstanceStatus: struct({
    DryRun: bool,
    InstanceId: list(str),
    Filter: filters,
    MaxResults: int,
    NextToken: str,
    IncludeAllInstances: bool,
    IncludeManagedResources: bool,
  }),
  DescribeVolumes: struct({
    DryRun: bool,
    VolumeId: list(str),
    Filter: filters,
    MaxResults: int,
    NextToken: str,
    IncludeManagedResources: bool,
  }),
  DeleteVolume: struct({ DryRun: bool, VolumeId: str }, ['VolumeId']),
  AttachVolume: struct({ DryRun: bool, Device: str, InstanceId: str, VolumeId: str }, [
    'Device',
    'InstanceId',
    'VolumeId',
  ]),
  CreateTags: struct({ DryRun: bool, ResourceId: list(str), Tag: list(struct({ Key: str, Value: str })) }, [
    'ResourceId',
    'Tag',
  ]),
  DescribeTags: struct({ DryRun: bool, Filter: filters, MaxResults: int, NextToken: str }),
  DescribeSubnets: struct({ DryRun: bool, SubnetId: list(str), Filter: filters, MaxResults: int, NextToken: str }),
  DescribeSecurityGroups: struct({
    DryRun: bool,
    GroupId: list(str),
    GroupName: list(str),
    Filter: filters,
    MaxResults: int,
    NextToken: str,
  }),
  DescribeAvailabilityZones: struct({
    DryRun: bool,
    ZoneName: list(str),
    ZoneId: list(str),
    AllAvailabilityZones: bool,
    Filter: filters,
  }),
};
