/**
 * An upload activity in a process of its own, so a test can kill it with SIGKILL mid-upload (a worker
 * crash: no finally block runs, PUTs are cut off). Runs uploadImage in MockActivityEnvironment and prints
 * every heartbeat's details as one JSON line, as the server would record them.
 *
 *   node --import tsx test/helpers/stream-upload-child.ts '<json: {config, input, heartbeatDetails?}>'
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import type { AwsConfig } from '../../common/config';
import type { UploadInput } from '../../common/contracts/activity-io';

async function main(): Promise<void> {
  const { config, input, heartbeatDetails } = JSON.parse(process.argv[2]!) as {
    config: AwsConfig;
    input: UploadInput;
    heartbeatDetails?: unknown;
  };
  const activities = createActivities({ config });
  const env = new MockActivityEnvironment(heartbeatDetails === undefined ? {} : { heartbeatDetails });
  env.on('heartbeat', (d: unknown) => process.stdout.write(`${JSON.stringify({ heartbeat: d })}\n`));
  const result = await env.run(activities.uploadImage, input);
  process.stdout.write(`${JSON.stringify({ result })}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
