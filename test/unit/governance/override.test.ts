import { deployRequest, DeployUsageError } from '../../../cli/deploy';
import { overrideReviewPolicy, reviewStateOf } from '../../../lib/approval/overrideReview';
import { overrideLabel } from '../../../lib/registry/records';
import { parseCommandLine } from '../../../cli/sluice';
import { overrideAuthLevel } from '../../../functions/overrideModel';

// The override's pure parts: the CLI's argument checks and request, the review policy made from
// the pipeline's, and the words shown for each review state.

describe('sluice deploy --override', () => {
  it('builds POST /api/models/{name}/override with version and reason', () => {
    const r = deployRequest('churn', {
      version: '7',
      override: true,
      reason: '  v8 answers NaN for everyone ',
    });
    expect(r.path).toBe('/api/models/churn/override');
    expect(JSON.parse(r.body.data)).toEqual({ version: 7, reason: 'v8 answers NaN for everyone' });
    expect(r.body.type).toBe('application/json');
  });

  it('refuses without --override, a bad version or a short reason, naming what is wrong', () => {
    expect(() => deployRequest('churn', { version: '7', reason: 'long enough reason' })).toThrow(
      /sluice run/,
    );
    expect(() =>
      deployRequest('churn', { version: 'x', override: true, reason: 'long enough reason' }),
    ).toThrow(/--version/);
    expect(() =>
      deployRequest('churn', { version: '0', override: true, reason: 'long enough reason' }),
    ).toThrow(DeployUsageError);
    expect(() => deployRequest('churn', { version: '7', override: true, reason: 'short' })).toThrow(
      /--reason/,
    );
    expect(() =>
      deployRequest(undefined, { version: '7', override: true, reason: 'long enough reason' }),
    ).toThrow(/MODEL/);
  });

  it('parses the command line with its own options', () => {
    const { values, positionals } = parseCommandLine([
      'deploy',
      'churn',
      '--version',
      '7',
      '--override',
      '--reason',
      'broken in production',
    ]);
    expect(positionals).toEqual(['deploy', 'churn']);
    expect(values).toMatchObject({ version: '7', override: true, reason: 'broken in production' });
  });
});

describe('the post-hoc review policy', () => {
  it('keeps the reviewers and timeout, needs one decision, reminds half way, escalates to the escalation reviewers', () => {
    const p = overrideReviewPolicy({
      reviewers: ['a@example.com', 'b@example.com', 'c@example.com'],
      requiredApprovals: 3,
      timeout: '24h',
      onTimeout: { action: 'escalate', reviewers: ['boss@example.com'], timeout: '4h' },
    });
    expect(p).toMatchObject({
      reviewers: ['a@example.com', 'b@example.com', 'c@example.com'],
      requiredApprovals: 1,
      timeout: '24h',
      reminderAt: 0.5,
      onTimeout: { action: 'escalate', reviewers: ['boss@example.com'], requiredApprovals: 1, timeout: '4h' },
    });
  });

  it('escalates to the same reviewers when the pipeline would reject on timeout: an override is never dropped', () => {
    const p = overrideReviewPolicy({ reviewers: ['a@example.com'], timeout: '8h' });
    expect(p.onTimeout).toEqual({
      action: 'escalate',
      reviewers: ['a@example.com'],
      requiredApprovals: 1,
      timeout: '8h',
    });
  });

  it('maps outcomes to review states and words', () => {
    expect(reviewStateOf('approved')).toBe('reviewed');
    expect(reviewStateOf('rejected')).toBe('rejected');
    expect(reviewStateOf('expired')).toBe('required');
    expect(overrideLabel({ review: 'required' })).toBe('override, review required');
    expect(overrideLabel({ review: 'reviewed' })).toBe('override, reviewed');
    expect(overrideLabel({ review: 'rejected' })).toBe('override, rejected in review');
  });
});

describe('who may override', () => {
  it('is the master key (auth level admin) unless App Service Authentication vouches for the principal', () => {
    expect(overrideAuthLevel(undefined)).toBe('admin');
    expect(overrideAuthLevel('false')).toBe('admin');
    expect(overrideAuthLevel('nonsense')).toBe('admin');
    expect(overrideAuthLevel('true')).toBe('function');
    expect(overrideAuthLevel('1')).toBe('function');
  });
});
