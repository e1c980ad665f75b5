import {
  jobFileSchema,
  JOB_CONTRACT_VERSION,
  SLUICE_VARIABLE_NAMES,
  userJobSpecSchema,
} from '../../../lib/contracts/job';

describe('the sluice.job/v1 job spec', () => {
  it('fills in the contract version, empty hyperparameters and an hour of time', () => {
    expect(userJobSpecSchema.parse({ code: 'jobs/sk', command: 'python3 train.py' })).toEqual({
      contract: 'sluice.job/v1',
      code: 'jobs/sk',
      command: 'python3 train.py',
      hyperparameters: {},
      timeLimitSeconds: 3600,
    });
  });

  it('keeps hyperparameters as given, nested values included', () => {
    const hyperparameters = { layers: [64, 32], optimizer: { name: 'adam', lr: 1e-3 }, note: null };
    expect(userJobSpecSchema.parse({ code: 'c', command: 'x', hyperparameters }).hyperparameters).toEqual(
      hyperparameters,
    );
  });

  it.each([
    [{ code: 'c', command: '  ' }, 'command'],
    [{ code: '', command: 'x' }, 'code'],
    [{ code: 'c', command: 'x', contract: 'sluice.job/v2' }, 'contract'],
    [{ code: 'c', command: 'x', timeLimitSeconds: 0 }, 'timeLimitSeconds'],
    [{ code: 'c', command: 'x', task: 'ranking' }, 'task'],
    [{ code: 'c', command: 'x', hyperparameters: { big: 'x'.repeat(40_000) } }, 'hyperparameters'],
    [{ code: 'c', command: 'x', cmd: 'typo' }, ''],
  ])('refuses %j at the field that is wrong', (input, field) => {
    const r = userJobSpecSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path.join('.')).toBe(field);
  });

  it('reads job.json without a code folder (it is the folder the file is in)', () => {
    expect(jobFileSchema.parse({ command: '/usr/bin/python3 train.py' })).toMatchObject({
      contract: JOB_CONTRACT_VERSION,
      command: '/usr/bin/python3 train.py',
    });
  });

  it('names the variables of the issue, plus the task and the Parquet siblings', () => {
    expect(SLUICE_VARIABLE_NAMES).toEqual([
      'SLUICE_JOB_ID',
      'SLUICE_TRAIN',
      'SLUICE_VALIDATION',
      'SLUICE_HOLDOUT',
      'SLUICE_TRAIN_PARQUET',
      'SLUICE_VALIDATION_PARQUET',
      'SLUICE_HOLDOUT_PARQUET',
      'SLUICE_CONTRACT',
      'SLUICE_TARGET',
      'SLUICE_FEATURES',
      'SLUICE_TASK',
      'SLUICE_HYPERPARAMETERS',
      'SLUICE_SEED',
      'SLUICE_OUTPUT',
    ]);
  });
});
