import { execFileSync } from 'node:child_process';
import type { SluiceVariable } from '../../../lib/contracts/job';
import {
  azuremlCommandLine,
  bindingOf,
  shellQuote,
  valueVariables,
} from '../../../lib/training/backends/azuremlUserJob';
import { commandArgv } from '../../../lib/training/userJob/command';

const paths: Record<string, string> = {
  'inputs.train': '/mnt/azureml/cr/j/1/cap/data-capability/wd/INPUT_train/train.csv',
  'inputs.validation': '/mnt/in/validation.csv',
  'inputs.holdout': '/mnt/in/holdout.csv',
  'inputs.train_parquet': '/mnt/in/train.parquet',
  'inputs.validation_parquet': '/mnt/in/validation.parquet',
  'inputs.holdout_parquet': '/mnt/in/holdout.parquet',
  'inputs.contract': '/mnt/in/contract.json',
  'outputs.model': '/mnt/out/model',
};
/** What Azure ML does to the command before its shell sees it. */
const bind = (line: string) =>
  line.replace(/\$\{\{(inputs|outputs)\.(\w+)\}\}/g, (_m, k, n) => paths[`${k}.${n}`]!);

const values = valueVariables(
  'job-1',
  { target: "it's the label", features: ['a b', 'c'], task: 'classification', seed: 7 },
  { C: 1, name: "O'Neil $HOME `x`" },
);

describe('the user command as an Azure ML command line', () => {
  it('binds path placeholders to inputs/outputs and quotes every word for the shell', () => {
    const line = azuremlCommandLine(
      'python3 train.py --data ${SLUICE_TRAIN} --out=${SLUICE_OUTPUT}/m',
      values,
    );
    expect(line).toBe(
      'env SLUICE_TRAIN="${{inputs.train}}" SLUICE_VALIDATION="${{inputs.validation}}" SLUICE_HOLDOUT="${{inputs.holdout}}" ' +
        'SLUICE_TRAIN_PARQUET="${{inputs.train_parquet}}" SLUICE_VALIDATION_PARQUET="${{inputs.validation_parquet}}" ' +
        'SLUICE_HOLDOUT_PARQUET="${{inputs.holdout_parquet}}" SLUICE_CONTRACT="${{inputs.contract}}" ' +
        'SLUICE_OUTPUT="${{outputs.model}}" python3 train.py --data "${{inputs.train}}" --out="${{outputs.model}}"/m',
    );
    expect(bindingOf('SLUICE_TARGET' as SluiceVariable)).toBeUndefined();
  });

  it('gives the program the same argv and environment as the local backend, through a real shell', () => {
    const command =
      '/usr/bin/python3 -c \'import json,os,sys; print(json.dumps([sys.argv[1:], os.environ["SLUICE_TRAIN"], os.environ["SLUICE_OUTPUT"]]))\' ' +
      '${SLUICE_TRAIN} "two words" \'$HOME;`id`\' ${SLUICE_TARGET} ${SLUICE_HYPERPARAMETERS} x${SLUICE_SEED}y "" ${SLUICE_FEATURES}';
    const line = bind(azuremlCommandLine(command, values));
    const out = JSON.parse(
      execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } }),
    );
    const local = commandArgv(command, {
      ...values,
      SLUICE_TRAIN: paths['inputs.train']!,
      SLUICE_OUTPUT: paths['outputs.model']!,
    });
    expect(out).toEqual([local.slice(3), paths['inputs.train'], paths['outputs.model']]);
    expect(out[0]).toEqual([
      paths['inputs.train'],
      'two words',
      '$HOME;`id`',
      "it's the label",
      '{"C":1,"name":"O\'Neil $HOME `x`"}',
      'x7y',
      '',
      '["a b","c"]',
    ]);
  });

  it('quotes only what needs it', () => {
    expect(shellQuote('train.py')).toBe('train.py');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it('refuses what the local backend refuses', () => {
    expect(() => azuremlCommandLine('python ${HOME}', values)).toThrow(
      expect.objectContaining({ code: 'unknown_placeholder' }),
    );
    expect(() => azuremlCommandLine("python 'open", values)).toThrow(
      expect.objectContaining({ code: 'bad_command' }),
    );
  });
});
