/**
 * Invariant (DESIGN.md, "Activities run at least once"): every activity has a test that runs it
 * twice and finds the same external state. This table says where each one is; the test fails when
 * an activity file is added without an entry, or when the named test no longer runs the activity
 * twice under the named title.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');

/** Activity (= file name in activities/) → the test file and the title of its run-twice test. */
const runTwiceTests: Record<string, { file: string; title: string }> = {
  beginRun: { file: 'test/integration/runs/promise.test.ts', title: 'beginRun run twice by one execution' },
  buildEvidence: { file: 'test/integration/activities/runTwice.test.ts', title: 'buildEvidence: twice' },
  cancelTraining: {
    file: 'test/integration/activities/runTwice.test.ts',
    title: 'cancelTraining: a second cancel',
  },
  checkTraining: { file: 'test/integration/activities/runTwice.test.ts', title: 'checkTraining twice' },
  createApproval: {
    file: 'test/integration/approval/activities.test.ts',
    title: 'createApproval: the second run',
  },
  deployModel: { file: 'test/integration/serving/deploy-score.test.ts', title: 'a retry changes nothing' },
  evaluateModel: {
    file: 'test/integration/training/activities.test.ts',
    title: 'and registers, idempotently',
  },
  finishRun: { file: 'test/integration/runs/promise.test.ts', title: 'frees its slot; twice is once' },
  ingestDataset: {
    file: 'test/integration/data/datasets.test.ts',
    title: 'twice gives the same result and the same blobs',
  },
  notifyReviewers: {
    file: 'test/integration/approval/activities.test.ts',
    title: 'notifyReviewers: a retry stores no second message',
  },
  startRollout: { file: 'test/integration/rollout/activities.test.ts', title: 'startRollout: twice' },
  setRolloutStep: { file: 'test/integration/rollout/activities.test.ts', title: 'setRolloutStep: twice' },
  checkRolloutGuards: {
    file: 'test/integration/rollout/activities.test.ts',
    title: 'checkRolloutGuards: twice',
  },
  endRollout: { file: 'test/integration/rollout/activities.test.ts', title: 'endRollout: twice' },
  readApproval: { file: 'test/integration/activities/runTwice.test.ts', title: 'readApproval: twice' },
  registerModel: {
    file: 'test/integration/training/activities.test.ts',
    title: 'and registers, idempotently',
  },
  reserveApproval: {
    file: 'test/integration/runs/promise.test.ts',
    title: 'a retry of the winner is granted again',
  },
  resolveReference: {
    file: 'test/integration/activities/runTwice.test.ts',
    title: 'resolveReference: twice',
  },
  submitTraining: {
    file: 'test/integration/training/activities.test.ts',
    title: 'and registers, idempotently',
  },
  importModel: {
    file: 'test/integration/mlflow/promote.test.ts',
    title: 'importModel twice: the same checked folder stored once',
  },
  loadPipelineVersion: {
    file: 'test/integration/runs/ledger.test.ts',
    title: 'loadPipelineVersion run twice returns the same definition and writes nothing; twice is once',
  },
  recordOverrideReview: {
    file: 'test/integration/governance/override.test.ts',
    title: 'recordOverrideReview: twice',
  },
  recordRunStep: {
    file: 'test/integration/runs/ledger.test.ts',
    title: 'recordRunStep applies a list of updates in order, each with its own time; twice is once',
  },
  takeDeploymentLock: {
    file: 'test/integration/governance/deployLock.test.ts',
    title: 'takeDeploymentLock twice is once',
  },
  updateApproval: { file: 'test/integration/approval/activities.test.ts', title: 'no-ops the second time' },
  validateDataset: {
    file: 'test/integration/data/datasets.test.ts',
    title: 'same report blob on a second run',
  },
};

const activities = readdirSync(path.join(root, 'activities'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

describe('every activity has a run-twice test', () => {
  it('names a run-twice test for each activity file', () => {
    const missing = activities.filter((a) => !runTwiceTests[a]);
    expect(missing).toEqual([]);
    const stale = Object.keys(runTwiceTests).filter((a) => !activities.includes(a));
    expect(stale).toEqual([]);
  });

  it.each(Object.entries(runTwiceTests))('%s: its test exists and calls the activity', (activity, where) => {
    const source = readFileSync(path.join(root, where.file), 'utf8');
    const escaped = where.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // The title is a test's (`it('…title…'`), not a comment's.
    expect(source).toMatch(new RegExp(`\\bit\\(\\s*'[^'\\n]*${escaped}`));
    expect(source).toMatch(new RegExp(`\\b${activity}\\b`));
  });
});
