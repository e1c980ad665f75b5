import { HttpRequest } from '@azure/functions';
import { createAuditHandler } from '../../../functions/audit';
import { wantsHtml } from '../../../functions/evidence';
import { AuditLog } from '../../../lib/audit/log';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';

describe('GET /api/audit (Cosmos emulator)', () => {
  let cosmos: CosmosEmulator;
  let handler: ReturnType<typeof createAuditHandler>;

  beforeAll(async () => {
    cosmos = await startCosmos();
    const audit = new AuditLog(await cosmosContainer(cosmos, 'audit'));
    for (let i = 1; i <= 3; i++) {
      await audit.record({
        kind: 'pipeline.changed',
        actor: 'dev',
        subject: `pipeline/p${i}`,
        data: { i },
        key: `k${i}`,
      });
    }
    handler = createAuditHandler({ audit });
  });
  afterAll(async () => {
    await cosmos?.stop();
  });

  const get = async (query: string) => {
    const res = await handler(new HttpRequest({ url: `http://localhost/api/audit${query}`, method: 'GET' }));
    return { status: res.status ?? 200, body: res.jsonBody as Record<string, unknown> };
  };

  it('pages entries and verifies the chain', async () => {
    expect((await get('?limit=2')).body).toMatchObject({ entries: [{ seq: 3 }, { seq: 2 }], next: 2 });
    expect((await get('?subject=pipeline/p1')).body).toMatchObject({
      entries: [{ seq: 1, subject: 'pipeline/p1' }],
    });
    expect((await get('?verify=true')).body).toMatchObject({ valid: true, entries: 3, head: { seq: 3 } });
  });

  it.each([
    ['?verify=yes', 'verify'],
    ['?limit=0', 'limit'],
    ['?limit=501', 'limit'],
    ['?before=abc', 'before'],
  ])('refuses %s naming %s', async (query, field) => {
    const { status, body } = await get(query);
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: 'invalid_query', field });
  });
});

describe('evidence content negotiation', () => {
  it.each([
    [null, false],
    ['application/json', false],
    ['*/*', false],
    ['text/html', true],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', true],
    ['application/json, text/html;q=0.5', false],
    ['text/*', true],
  ])('Accept %s → HTML %s', (accept, html) => {
    expect(wantsHtml(accept)).toBe(html);
  });
});
