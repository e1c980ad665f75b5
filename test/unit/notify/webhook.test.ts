import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookNotifier, webhookSignature } from '../../../lib/notify/webhook';
import type { Notification } from '../../../lib/notify/types';

const msg: Notification = {
  key: 'run-1:approval:request:primary:alice@example.com',
  kind: 'request',
  to: 'alice@example.com',
  subject: 'Approval needed',
  text: 'plain',
  html: '<p>x</p>',
  link: 'http://localhost:7071/api/approvals/t.s',
  runId: 'run-1',
  approvalId: 'run-1:approval',
  pipeline: 'churn',
};

describe('webhook notifier', () => {
  it('POSTs JSON with a Slack/Teams-readable text and a verifiable HMAC signature', async () => {
    const got: { headers: Record<string, unknown>; body: string }[] = [];
    let status = 200;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.writeHead(status).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    try {
      const n = new WebhookNotifier(
        url,
        'a-webhook-secret-of-16+',
        fetch,
        () => new Date('2026-03-01T00:00:00Z'),
      );
      await expect(n.send(msg)).resolves.toEqual({ sent: true, ref: 'webhook 200' });
      const { headers, body } = got[0]!;
      const payload = JSON.parse(body);
      expect(payload.text).toBe('Approval needed\nhttp://localhost:7071/api/approvals/t.s');
      expect(payload).toMatchObject({
        kind: 'request',
        to: 'alice@example.com',
        runId: 'run-1',
        link: msg.link,
      });
      expect(headers['idempotency-key']).toBe(msg.key);
      expect(headers['x-sluice-timestamp']).toBe('1772323200');
      expect(headers['x-sluice-signature']).toBe(
        webhookSignature('a-webhook-secret-of-16+', '1772323200', body),
      );

      status = 503;
      await expect(n.send(msg)).rejects.toMatchObject({ name: 'TransientError' });
      status = 404;
      await expect(n.send(msg)).rejects.toMatchObject({ name: 'NonRetriableError' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('reports an unreachable endpoint as retriable', async () => {
    const n = new WebhookNotifier('http://127.0.0.1:9/hook', undefined);
    await expect(n.send(msg)).rejects.toMatchObject({ name: 'TransientError', code: 'webhook_unreachable' });
  });
});
