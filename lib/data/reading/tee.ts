/**
 * Splits one byte stream into two consumers (the blob upload and the parser) with bounded
 * buffering: a branch that runs ahead waits once the other is `highWater` chunks behind, so one
 * pass over the source feeds both and memory stays at a few chunks. `abort` fails both branches
 * (a parse error stops the upload instead of copying the rest of a bad file).
 */
export interface Tee {
  branches: [AsyncIterable<Uint8Array>, AsyncIterable<Uint8Array>];
  abort(reason: unknown): void;
}

/**
 * `holdFirstEnd`: the first branch sees the end of the stream only once this settles (and fails if
 * it rejects) — a content-addressed upload then commits only data the parser accepted.
 */
export function tee(
  source: AsyncIterable<Uint8Array>,
  options: { highWater?: number; holdFirstEnd?: Promise<unknown> } = {},
): Tee {
  const highWater = options.highWater ?? 8;
  const it = source[Symbol.asyncIterator]();
  const queues: Uint8Array[][] = [[], []];
  const done = [false, false];
  let ended = false;
  let failure: { reason: unknown } | undefined;
  let reading: Promise<void> | undefined;
  let waiters: (() => void)[] = [];
  const waitForRoom = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));
  const notify = (): void => {
    const ready = waiters;
    waiters = [];
    for (const w of ready) w();
  };

  async function readOne(): Promise<void> {
    const r = await it.next();
    if (r.done) ended = true;
    else {
      for (const b of [0, 1]) if (!done[b]) queues[b]!.push(r.value);
    }
  }

  function branch(self: 0 | 1): AsyncIterable<Uint8Array> {
    const other = (1 - self) as 0 | 1;
    return {
      [Symbol.asyncIterator]: () => ({
        async next(): Promise<IteratorResult<Uint8Array>> {
          for (;;) {
            if (failure) throw failure.reason;
            const q = queues[self]!;
            if (q.length > 0) {
              const value = q.shift()!;
              notify();
              return { value, done: false };
            }
            if (ended) {
              if (self === 0 && options.holdFirstEnd) await options.holdFirstEnd;
              // \`abort\` may have run while waiting (TS cannot see that).
              const late = failure as { reason: unknown } | undefined;
              if (late) throw late.reason;
              return { value: undefined, done: true };
            }
            if (!done[other] && queues[other]!.length >= highWater) {
              await waitForRoom();
              continue;
            }
            reading ??= readOne()
              .catch((reason: unknown) => {
                failure = { reason };
              })
              .finally(() => {
                reading = undefined;
                notify();
              });
            await reading;
          }
        },
        async return(): Promise<IteratorResult<Uint8Array>> {
          done[self] = true;
          queues[self] = [];
          notify();
          if (done[other]) await it.return?.();
          return { value: undefined, done: true };
        },
      }),
    };
  }

  return {
    branches: [branch(0), branch(1)],
    abort(reason: unknown) {
      failure ??= { reason };
      notify();
    },
  };
}
