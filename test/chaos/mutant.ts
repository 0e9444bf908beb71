/**
 * A deliberately broken build for the chaos suite to catch: a copy of the worker's source (activities/,
 * workflows/, worker/ and the common/ they share) with one change applied. The chaos run then uses the copy's worker; if the suite
 * still passed, it would not be protecting that property.
 */
import { cp, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/services';

export interface Mutation {
  name: string;
  /** File (relative to the repository) and the exact text replaced in it. */
  file: string;
  find: string;
  replace: string;
  /** The check that must fail (a substring of one of the run's problems). */
  caughtBy: string;
}

/** ImportInstance retried without first looking for the task an earlier attempt created. */
export const NO_IDEMPOTENCY_LOOKUP: Mutation = {
  name: 'ImportInstance without the idempotency lookup',
  file: 'activities/import-idempotency.ts',
  find: '  if (attempt() === 1 && !marker) return { sentBefore };',
  replace: '  return { sentBefore };',
  caughtBy: 'conversion tasks',
};

/** Copies the worker's source into `dir` with the mutation applied; returns the worker entry to run. */
export async function buildMutant(dir: string, mutation: Mutation): Promise<string> {
  // client/ too: the batch-end report activity renders through the CLI's batch view (client/batch-view.ts).
  for (const folder of ['activities', 'workflows', 'worker', 'common', 'client']) {
    await cp(path.join(REPO_ROOT, folder), path.join(dir, folder), { recursive: true });
  }
  for (const file of ['package.json', 'tsconfig.json']) await cp(path.join(REPO_ROOT, file), path.join(dir, file));
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const target = path.join(dir, mutation.file);
  const source = await readFile(target, 'utf8');
  if (!source.includes(mutation.find)) {
    throw new Error(
      `mutation "${mutation.name}" no longer applies: ${mutation.file} lacks the text it replaces; update test/chaos/mutant.ts`
    );
  }
  await writeFile(target, source.replace(mutation.find, mutation.replace));
  return path.join(dir, 'worker', 'main.ts');
}
