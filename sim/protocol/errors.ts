/**
 * The EC2 error envelope and the HTTP status EC2 sends with each error code:
 * `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 */
import { XML_DECLARATION, builder } from './xml';

export function renderError(code: string, message: string, requestId: string): string {
  return (
    XML_DECLARATION +
    builder.build({ Response: { Errors: { Error: { Code: code, Message: message } }, RequestID: requestId } })
  );
}

/** HTTP status EC2 uses for an error code (400 for every other client error). */
export function statusFor(code: string): number {
  switch (code) {
    case 'AuthFailure':
      return 401;
    case 'UnauthorizedOperation':
      return 403;
    case 'DryRunOperation':
      return 412;
    case 'RequestLimitExceeded':
    case 'Unavailable':
    case 'ServiceUnavailable':
      return 503;
    case 'InternalError':
    case 'InsufficientCapacity':
      return 500;
    default:
      return 400;
  }
}

export const MESSAGES = {
  throttled: 'Request limit exceeded.',
  internal: 'An internal error has occurred',
  unavailable: 'The service is unavailable. Please try again shortly.',
  dryRun: 'Request would have succeeded, but DryRun flag is set.',
  unauthorized: 'You are not authorized to perform this operation.',
} as const;
