/**
 * A per-process cap on request bodies being streamed to Blob Storage at once. Each upload holds a
 * bounded buffer (ArtifactStore: one inline head, then a few blocks in flight), so the cap bounds
 * the memory uploads can take; past it, callers are told to come back (503 with Retry-After)
 * instead of queueing unbounded bytes in the host.
 */
export class UploadSlots {
  private active = 0;
  constructor(private readonly max: () => number) {}

  /** A release function when a slot is free, undefined when all are taken. */
  tryTake(): (() => void) | undefined {
    if (this.active >= this.max()) return undefined;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
    };
  }
}
