import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { NonRetriableError } from '../lib/errors';
import type { ModelExpectation, ModelFolderCheck } from '../lib/training/userJob/run';

/**
 * The model-folder check `sluice job test` uses until lib/mlmodel/check.ts (`checkModelFolder`:
 * MLmodel parsed, ONNX loaded, inputs and outputs against the features and the task) is merged;
 * then this file becomes `export { checkModelFolder } from '../lib/mlmodel/check'`. What it does
 * today is real but partial: size limit, manifest and digest, MLmodel present with an onnx flavor
 * naming a file that exists, and metrics.json read when present.
 */
export async function checkModelFolder(dir: string, e: ModelExpectation): Promise<ModelFolderCheck> {
  const files = await listFiles(dir);
  const manifest = [];
  let total = 0;
  for (const file of files) {
    const bytes = await readFile(file);
    total += bytes.length;
    if (total > e.maxBytes)
      throw new NonRetriableError('model_too_large', `the model folder is over ${e.maxBytes} bytes`);
    const path = relative(dir, file).split(sep).join('/');
    manifest.push({ path, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length });
  }
  manifest.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const digest = createHash('sha256')
    .update(manifest.map((m) => `${m.sha256}  ${m.path}\n`).join(''))
    .digest('hex');
  const mlmodel = await readFile(join(dir, 'MLmodel'), 'utf8').catch(() => {
    throw new NonRetriableError('mlmodel_missing', 'the output folder has no MLmodel file');
  });
  const onnxFile = /^ {2}onnx:\s*\n(?: {4}.*\n)*? {4}data: *(\S+)/m.exec(mlmodel)?.[1];
  const flavor = onnxFile ? 'onnx' : 'python_function';
  if (onnxFile && !manifest.some((m) => m.path === onnxFile))
    throw new NonRetriableError('onnx_missing', `MLmodel names ${onnxFile}, which is not in the folder`);
  let metrics: Record<string, number> | undefined;
  if (manifest.some((m) => m.path === 'metrics.json')) {
    const parsed = JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    metrics = Object.fromEntries(
      Object.entries(parsed).filter((kv): kv is [string, number] => typeof kv[1] === 'number'),
    );
  }
  const inputLayout = onnxFile
    ? e.features.every((f) => new RegExp(`"name": "${escape(f.name)}"`).test(mlmodel))
      ? 'per-feature'
      : 'tensor'
    : undefined;
  return {
    digest,
    manifest,
    flavor,
    onnxPath: onnxFile ? join(dir, onnxFile) : undefined,
    inputLayout,
    metrics,
  };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full)));
    else if (entry.isFile()) out.push(full);
    else throw new NonRetriableError('model_folder_link', `${full} is not a plain file or folder`);
  }
  return out;
}
