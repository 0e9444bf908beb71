/**
 * Limits EC2 sets on what vmconvoy sends, shared by the inventory check (client) and the activities that
 * send it. Sandbox-safe.
 */

/** User data, before base64 (ImportInstance's LaunchSpecification.UserData; EC2 user guide, "Instance user data"). */
export const MAX_USER_DATA_BYTES = 16 * 1024;
