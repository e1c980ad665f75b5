import { createServer } from 'node:net';
import { LOOPBACK } from './wellKnown';

export type ServiceName = 'blob' | 'queue' | 'table' | 'cosmos';

const labels: Record<ServiceName, string> = {
  blob: 'Azurite Blob',
  queue: 'Azurite Queue',
  table: 'Azurite Table',
  cosmos: 'Cosmos DB emulator',
};

/** The devhost CLI flag that sets each service's port. */
export const portFlags: Record<ServiceName, string> = {
  blob: '--blob-port',
  queue: '--queue-port',
  table: '--table-port',
  cosmos: '--cosmos-port',
};

/** A fixed port an embedded service needs is taken by another process. */
export class PortInUseError extends Error {
  readonly code = 'EADDRINUSE';
  constructor(
    readonly service: ServiceName,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(
      `Port ${port} for the ${labels[service]} is already in use on ${LOOPBACK}. Stop the process using it, ` +
        `or start devhost with ${portFlags[service]} <port> (${portFlags[service]} 0 picks a free port).`,
      options,
    );
    this.name = 'PortInUseError';
  }
}

/** Resolves when `port` can be bound on loopback right now; rejects with PortInUseError if it cannot. */
export async function assertPortFree(service: ServiceName, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(service, port, { cause: err }) : err);
    });
    probe.listen({ port, host: LOOPBACK, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Checks every fixed (non-zero) port, so a user sees all conflicts at once instead of one per start. */
export async function assertPortsFree(ports: Partial<Record<ServiceName, number>>): Promise<void> {
  const fixed = (Object.entries(ports) as [ServiceName, number | undefined][]).filter(
    (e): e is [ServiceName, number] => typeof e[1] === 'number' && e[1] > 0,
  );
  const results = await Promise.allSettled(fixed.map(([service, port]) => assertPortFree(service, port)));
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
}
