import path from 'node:path';
// `yaml` (eemeli/yaml, a pinned dependency) parses the MLmodel file.
import { parse as parseYaml } from 'yaml';
import { NonRetriableError } from '../errors';

/** What Sluice reads from an MLflow `MLmodel` file. */
export interface MLmodelInfo {
  flavor: 'onnx' | 'python_function';
  /** The ONNX file named by the onnx flavor's `data`, relative to the folder ('/'-separated). */
  onnxPath?: string;
  /** The signature's inputs and outputs (MLflow stores each as a JSON string). */
  signature?: { inputs: unknown[]; outputs: unknown[] };
}

const bad = (message: string): NonRetriableError =>
  new NonRetriableError('mlmodel_invalid', `MLmodel: ${message}`);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function signaturePart(value: unknown, name: string): unknown[] {
  if (value === undefined || value === null) return [];
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw bad(`signature.${name} is not JSON`);
    }
  }
  if (!Array.isArray(parsed)) throw bad(`signature.${name} is not a list`);
  return parsed;
}

/** A path named inside the MLmodel: relative, inside the folder, '/'-separated. */
function folderPath(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw bad(`${field} must name a file`);
  const norm = path.posix.normalize(value.replace(/\\/g, '/'));
  if (path.posix.isAbsolute(norm) || norm === '..' || norm.startsWith('../')) {
    throw bad(`${field} (${value}) must be a path inside the model folder`);
  }
  return norm.replace(/^\.\//, '');
}

/**
 * Parses an MLmodel file's text. Malformed YAML, a document that is not a mapping, no `flavors`,
 * neither an `onnx` nor a `python_function` flavor, or a malformed signature → `mlmodel_invalid`.
 */
export function parseMLmodel(source: string): MLmodelInfo {
  let doc: unknown;
  try {
    // uniqueKeys: a key given twice is an error, not a silent last-one-wins.
    doc = parseYaml(source, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new NonRetriableError('mlmodel_invalid', `MLmodel is not valid YAML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!isRecord(doc)) throw bad('the document is not a mapping');
  const flavors = doc.flavors;
  if (!isRecord(flavors)) throw bad('no flavors mapping');
  let info: MLmodelInfo;
  if ('onnx' in flavors) {
    const onnx = flavors.onnx;
    if (!isRecord(onnx)) throw bad('flavors.onnx is not a mapping');
    info = { flavor: 'onnx', onnxPath: folderPath(onnx.data, 'flavors.onnx.data') };
  } else if ('python_function' in flavors) {
    if (!isRecord(flavors.python_function)) throw bad('flavors.python_function is not a mapping');
    info = { flavor: 'python_function' };
  } else {
    throw bad(
      `neither an onnx nor a python_function flavor (found: ${Object.keys(flavors).join(', ') || 'none'})`,
    );
  }
  if (doc.signature !== undefined && doc.signature !== null) {
    if (!isRecord(doc.signature)) throw bad('signature is not a mapping');
    info.signature = {
      inputs: signaturePart(doc.signature.inputs, 'inputs'),
      outputs: signaturePart(doc.signature.outputs, 'outputs'),
    };
  }
  return info;
}
