/**
 * writeBatchReport: the fleet's last step. Builds the batch's report exactly as `vmconvoy report` does
 * (client/report-html/collect.ts, from visibility and each VM's history) and stores it as JSON and HTML
 * under the batch's folder (common/object-keys.ts batchReportKey), so the record of the batch outlives
 * Temporal's retention. Safe to run twice: each run overwrites both objects with a newer report.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getClient } from '@temporalio/activity';
import { batchView } from '../client/batch-view';
import { collectBatchReport } from '../client/report-html/collect';
import { renderBatchReportHtml } from '../common/batch-report/html';
import { batchReportKey } from '../common/object-keys';
import { awsCall } from './aws-call';

export interface BatchReportInput {
  batch: string;
  /** The Temporal namespace the batch's objects live under (as its VMs' objects). */
  namespace?: string;
  /** How the batch ended, as the fleet knows it (its workflow is still running while this runs). */
  state: 'completed' | 'failed' | 'cancelled';
  conversionLimit?: number;
}

export interface BatchReportResult {
  jsonKey: string;
  htmlKey: string;
  vms: number;
}

interface Deps {
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
}

async function put(deps: Deps, key: string, body: string, contentType: string): Promise<void> {
  await awsCall({ operation: `writing ${key}`, bucket: deps.bucket, service: 'S3' }, (abortSignal) =>
    deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body, ContentType: contentType }), {
      abortSignal,
    })
  );
}

export async function writeBatchReport(deps: Deps, input: BatchReportInput): Promise<BatchReportResult> {
  const client = getClient();
  const view = await batchView(client, input.batch);
  const report = await collectBatchReport(client, view, {
    state: input.state,
    conversionLimit: input.conversionLimit,
  });
  const loc = { batch: input.batch, namespace: input.namespace };
  const jsonKey = batchReportKey(deps.keyPrefix, loc, 'json');
  const htmlKey = batchReportKey(deps.keyPrefix, loc, 'html');
  await put(deps, jsonKey, JSON.stringify(report, null, 2), 'application/json');
  await put(deps, htmlKey, renderBatchReportHtml(report), 'text/html; charset=utf-8');
  return { jsonKey, htmlKey, vms: report.vms.length };
}
