/**
 * The failure converter of encrypted deployments, loaded by path (DataConverter.failureConverterPath) because
 * workflow code in the sandbox converts its errors too: the message and stack trace of every failure go
 * into an encoded payload (`encodeCommonAttributes`), which the payload codec then encrypts. Histories show
 * "Encoded failure" instead of a message that may name paths, hosts or inventory values.
 * Sandbox-safe: imports nothing but @temporalio/common.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
