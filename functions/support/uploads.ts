/**
 * A per-process cap on request bodies being streamed to Blob Storage at once. Each upload holds a
 * bounded buffer (ArtifactStore: one inline head, then a few blocks in flight), so the cap bounds
 * the memory uploads can take; past it, callers are told to come back (503 with Retry-After)
 * instead of queueing unbounded bytes in the host.
 */
export class UploadSlots {
  private active = 0;

  /** A release function when fewer than `max` are taken, undefined otherwise. */
  tryTake(max: number): (() => void) | undefined {
    if (this.active >= max) return undefined;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
    };
  }
}
