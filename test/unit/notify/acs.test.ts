import type { TokenCredential } from '@azure/core-auth';
import { ACS_SCOPE, AcsEmailNotifier, operationIdFor } from '../../../lib/notify/acs';
import type { Notification } from '../../../lib/notify/types';
import type { FakeAcs } from '../../support/fakes/acsEmail';
import { startFakeAcs } from '../../support/fakes/acsEmail';

const scopes: string[] = [];
const credential: TokenCredential = {
  getToken: async (scope) => {
    scopes.push(...(Array.isArray(scope) ? scope : [scope]));
    return { token: 'fake-acs-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  },
};

function message(over: Partial<Notification> = {}): Notification {
  return {
    key: 'run-1:approval:request:primary:alice@example.com',
    kind: 'request',
    to: 'alice@example.com',
    subject: 'Approval needed: deploy churn v7 (churn)',
    text: 'Review: http://localhost:7071/api/approvals/abc.def',
    html: '<p>Review</p>',
    link: 'http://localhost:7071/api/approvals/abc.def',
    runId: 'run-1',
    approvalId: 'run-1:approval',
    pipeline: 'churn',
    ...over,
  };
}

describe('ACS e-mail notifier against the local ACS fake', () => {
  let acs: FakeAcs;
  const sleeps: number[] = [];
  const notifier = () =>
    new AcsEmailNotifier({
      endpoint: `${acs.url}/`,
      sender: 'DoNotReply@sluice.example',
      apiVersion: '2023-03-31',
      credential,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });

  beforeEach(async () => {
    sleeps.length = 0;
    acs = await startFakeAcs({ runningPolls: 2, retryAfter: 1 });
  });
  afterEach(() => acs.close());

  it('sends with a managed-identity token, then polls the operation until it succeeds, honouring Retry-After', async () => {
    const r = await notifier().send(message());
    expect(r).toEqual({ sent: true, ref: operationIdFor(message().key) });
    expect(scopes).toContain(ACS_SCOPE);
    expect(acs.emails).toHaveLength(1);
    const sent = acs.emails[0]!;
    expect(sent.authorization).toBe('Bearer fake-acs-token');
    expect(sent.body.senderAddress).toBe('DoNotReply@sluice.example');
    expect(sent.body.recipients.to).toEqual([{ address: 'alice@example.com' }]);
    expect(sent.body.content).toEqual({
      subject: message().subject,
      plainText: message().text,
      html: message().html,
    });
    expect(sent.body.userEngagementTrackingDisabled).toBe(true);
    expect(acs.polls.get(sent.operationId)).toBe(3);
    expect(sleeps).toEqual([1000, 1000, 1000]);
  });

  it('sends the same message once when the activity is retried (deterministic Operation-Id)', async () => {
    await notifier().send(message());
    await notifier().send(message());
    expect(acs.emails).toHaveLength(1);
    await notifier().send(message({ key: 'run-1:approval:reminder:primary:alice@example.com' }));
    expect(acs.emails).toHaveLength(2);
  });

  it('maps throttling to a retriable error and a failed send to a non-retriable one', async () => {
    acs.failNextSends(429);
    await expect(notifier().send(message())).rejects.toMatchObject({
      name: 'TransientError',
      code: 'acs_unavailable',
    });
    await expect(notifier().send(message({ to: 'gone@bounce.test', key: 'k2' }))).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'acs_send_failed',
      message: expect.stringContaining('EmailDroppedAllRecipientsSuppressed'),
    });
  });

  it('treats a rejected token as non-retriable (a missing role will not fix itself)', async () => {
    const bad: TokenCredential = {
      getToken: async () => ({ token: 'wrong', expiresOnTimestamp: Date.now() + 60_000 }),
    };
    const n = new AcsEmailNotifier({
      endpoint: acs.url,
      sender: 's@x.io',
      apiVersion: '2023-03-31',
      credential: bad,
    });
    await expect(n.send(message())).rejects.toMatchObject({
      name: 'NonRetriableError',
      message: expect.stringContaining('401'),
    });
  });

  it('derives a valid v5-shaped UUID per message key', () => {
    const id = operationIdFor('k');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(operationIdFor('k')).toBe(id);
    expect(operationIdFor('k2')).not.toBe(id);
  });
});
