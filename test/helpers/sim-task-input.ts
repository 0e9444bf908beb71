/**
 * An ImportInstance as the simulator's model takes it (Ec2Model.createTask), for the tests that drive the
 * model directly: a 100 MiB RAW image, an 8 GiB volume, a t2.micro in us-east-1a.
 */
import type { CreateTaskInput } from '../../sim/model/ec2-model';

export const SIM_LAUNCH = {
  architecture: 'x86_64',
  instanceType: 't2.micro',
  availabilityZone: 'us-east-1a',
  groupNames: [],
  groupIds: [],
  monitoring: false,
  shutdownBehavior: 'stop',
  userDataBytes: 0,
} satisfies NonNullable<CreateTaskInput['launch']>;

export const SIM_TASK_INPUT = {
  kind: 'instance',
  format: 'RAW',
  bytes: 100 * 1024 * 1024,
  volumeSizeGib: 8,
  manifestUrl: 'http://s3/b/k',
  availabilityZone: 'us-east-1a',
  launch: SIM_LAUNCH,
} satisfies CreateTaskInput;
