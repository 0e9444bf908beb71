/**
 * The Python virtual environment the conformance tests drive the simulator from: the AWS CLI v1 and boto3,
 * pinned in test/conformance/requirements.txt and installed from PyPI with pip into
 * `~/.cache/vmconvoy/venv` (outside the repository, like the other tools). The environment is rebuilt when
 * the requirements file changes: the hash of the file it was built from is kept inside it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './services';
import { cacheDir, findOnPath, isExecutable } from './tools';

const execFileAsync = promisify(execFile);

export const REQUIREMENTS_FILE = path.join(REPO_ROOT, 'test', 'conformance', 'requirements.txt');

export interface PythonVenv {
  dir: string;
  /** The venv's interpreter: has boto3 and botocore. */
  python: string;
  /** The AWS CLI v1 entry point in the venv. */
  aws: string;
}

export interface PythonVenvOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** @default test/conformance/requirements.txt */
  requirements?: string;
}

/** python3.11 or python3 from PATH (the venv module must be there: Debian's python3-venv). */
async function basePython(env: NodeJS.ProcessEnv): Promise<string> {
  for (const name of ['python3.11', 'python3']) {
    const found = await findOnPath(name, env);
    if (found) return found;
  }
  throw new Error('no python3 on PATH: install python3 and python3-venv (Debian) to run the conformance tests');
}

export async function resolvePythonVenv(opts: PythonVenvOptions = {}): Promise<PythonVenv> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const requirements = opts.requirements ?? REQUIREMENTS_FILE;
  const dir = path.join(cacheDir(env), 'venv');
  const venv: PythonVenv = { dir, python: path.join(dir, 'bin', 'python'), aws: path.join(dir, 'bin', 'aws') };
  const wanted = createHash('sha256')
    .update(await readFile(requirements))
    .digest('hex');
  const stamp = path.join(dir, '.requirements-sha256');
  const built = await readFile(stamp, 'utf8').catch(() => '');
  if (built.trim() === wanted && (await isExecutable(venv.python)) && (await isExecutable(venv.aws))) return venv;

  log(`creating the Python environment for the conformance tests in ${dir} (pip, from PyPI) ...`);
  await rm(dir, { recursive: true, force: true });
  await execFileAsync(await basePython(env), ['-m', 'venv', dir], { env });
  const pipEnv = { ...env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1' };
  await execFileAsync(venv.python, ['-m', 'pip', 'install', '--quiet', '--require-virtualenv', '-r', requirements], {
    env: pipEnv,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 600_000,
  });
  await writeFile(stamp, `${wanted}\n`);
  log(`Python environment ready: ${venv.aws}`);
  return venv;
}
