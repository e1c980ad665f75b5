/**
 * The audit log on the Cosmos emulator (in process, over HTTP on loopback): appends per second
 * with one writer and with 8 concurrent writers racing for the head (each a separate client, as
 * separate Functions instances would be), the lost races per entry under contention, and the
 * time to verify the whole chain. Prints figures; asserts nothing.
 *
 *   npm run build && node dist/bench/audit/audit.js      (AUDIT_ENTRIES=400 by default)
 */
import { performance } from 'node:perf_hooks';
import { AuditLog } from '../../lib/audit/log';
import { cosmosStoreOn, startCosmos } from '../../test/support/emulators';

async function main(): Promise<void> {
  const n = Number(process.env.AUDIT_ENTRIES ?? 400);
  const emulator = await startCosmos();
  const store = cosmosStoreOn(emulator);
  await store.ensure();
  const event = (i: number) => ({
    kind: 'alias.moved',
    actor: 'approval:bench',
    subject: `model/bench/${i}`,
    data: { alias: 'production', from: i - 1, to: i, reason: 'bench' },
    key: `bench:${i}`,
  });
  const fresh = async (id: string) =>
    (await store.database.containers.createIfNotExists({ id, partitionKey: { paths: ['/chain'] } }))
      .container;

  // One writer.
  const single = new AuditLog(await fresh('audit-bench-1'));
  let t = performance.now();
  for (let i = 1; i <= n; i++) await single.record(event(i));
  const singleMs = performance.now() - t;
  console.log(
    `one writer: ${n} appends in ${singleMs.toFixed(0)} ms = ${((n / singleMs) * 1000).toFixed(0)}/s`,
  );

  // Eight writers at once.
  const container = await fresh('audit-bench-8');
  const clients = Array.from({ length: 8 }, () => cosmosStoreOn(emulator));
  let races = 0;
  const logs = clients.map(
    (c) =>
      new AuditLog(c.database.container(container.id), {
        sleep: async (attempt) => {
          races++;
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * 2 ** attempt)));
        },
      }),
  );
  t = performance.now();
  let next = 1;
  await Promise.all(
    logs.map(async (log) => {
      for (let i = next++; i <= n; i = next++) await log.record(event(i));
    }),
  );
  const multiMs = performance.now() - t;
  console.log(
    `8 writers: ${n} appends in ${multiMs.toFixed(0)} ms = ${((n / multiMs) * 1000).toFixed(0)}/s, ${(races / n).toFixed(2)} lost races per entry`,
  );

  t = performance.now();
  const result = await new AuditLog(container).verify();
  console.log(
    `verify: ${result.entries} entries, valid=${result.valid}, ${(performance.now() - t).toFixed(0)} ms`,
  );
  for (const c of clients) c.client.dispose();
  store.client.dispose();
  await emulator.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
