/** Progress reports and cooperative stopping (cancel, time limit) for the trainers. */
export interface TrainingProgress {
  /** 0..1, best effort. */
  fraction: number;
  iteration: number;
  loss?: number;
  validationLoss?: number;
}

export interface StopSignal {
  onProgress?: (progress: TrainingProgress) => void;
  /** Polled between iterations; true stops training and keeps the model fitted so far. */
  shouldStop?: () => boolean;
}
