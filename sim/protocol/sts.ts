/**
 * The one STS action the simulator answers: GetCallerIdentity (Query protocol, Version 2011-06-15), which
 * names the account of the key that signed the request. Its error envelope is STS's, not EC2's:
 * `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
 * Sources: https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html (request, the
 * Account/Arn/UserId result) and https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html.
 */
import type { QueryParams } from './query';
import { XML_DECLARATION, builder } from './xml';

const STS_XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const STS_VERSION = '2011-06-15';

export interface StsAnswer {
  status: number;
  body: string;
}

/** The caller as the signature proved it: its key and the account that key belongs to. */
export interface StsCaller {
  accessKeyId: string;
  accountId: string;
}

export function stsError(status: number, code: string, message: string, requestId: string): StsAnswer {
  const type = status >= 500 ? 'Receiver' : 'Sender';
  return {
    status,
    body:
      XML_DECLARATION +
      builder.build({
        ErrorResponse: {
          '@_xmlns': STS_XMLNS,
          Error: { Type: type, Code: code, Message: message },
          RequestId: requestId,
        },
      }),
  };
}

/** Answers a verified STS request: GetCallerIdentity, or InvalidAction for anything else. */
export function answerSts(params: QueryParams, caller: StsCaller, requestId: string): StsAnswer {
  const action = params.get('Action') ?? '';
  if (action !== 'GetCallerIdentity')
    return stsError(
      400,
      'InvalidAction',
      `Could not find operation ${action || '(none)'} for version ${STS_VERSION}`,
      requestId
    );
  if (params.get('Version') !== STS_VERSION)
    return stsError(400, 'InvalidParameterValue', `Version must be ${STS_VERSION}`, requestId);
  return {
    status: 200,
    body:
      XML_DECLARATION +
      builder.build({
        GetCallerIdentityResponse: {
          '@_xmlns': STS_XMLNS,
          GetCallerIdentityResult: {
            // The simulator's keys stand for IAM users named after the key (its guess: no users are modelled).
            Arn: `arn:aws:iam::${caller.accountId}:user/${caller.accessKeyId}`,
            UserId: caller.accessKeyId,
            Account: caller.accountId,
          },
          ResponseMetadata: { RequestId: requestId },
        },
      }),
  };
}
