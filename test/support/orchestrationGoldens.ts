/**
 * Replay of recorded orchestration histories (test/e2e/pipeline/captureGolden.ts records them) through
 * the real durable-functions library, with devhost's shadow replay as the judge of determinism (the
 * library itself does not detect it; the Durable extension does, with the wording devhost copies).
 */
import path from 'node:path';
import { topLevelActions } from '../../devhost/durable/actions';
import { EventType } from '../../devhost/durable/history';
import { replayFromHistory } from '../../devhost/durable/replay';
import type { RecordedRun } from '../e2e/pipeline/captureGolden';
import {
  type EpisodeResult,
  type LoadedApp,
  goldenEpisodes,
  loadGoldens,
  timerOptions,
  workAsked,
  workRecorded,
} from '../devhost/durable/support/sdkDriver';

export type { RecordedRun };

/** Every recorded run in test/fixtures/<folder>, by file name. */
export function loadRecorded(folder: string): (readonly [string, RecordedRun])[] {
  return loadGoldens(path.resolve(__dirname, '..', 'fixtures', folder)) as (readonly [string, RecordedRun])[];
}

/** Runs the orchestrator on the whole recorded history; fails the test on an error or non-determinism. */
export async function replayAll(app: LoadedApp, g: RecordedRun): Promise<EpisodeResult> {
  const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
  expect(r.error).toBeUndefined();
  const replay = replayFromHistory(topLevelActions(r.state!), g.history, timerOptions);
  expect(replay.nonDeterminism).toBeUndefined();
  // Everything the code asks for on the recorded history was recorded: nothing new, nothing else.
  expect(replay.newItems).toEqual([]);
  return r;
}

/**
 * Splits the history into the episodes devhost ran and replays each: given what the library was given
 * then, today's code must ask for exactly the work that was recorded next, at the same sequence ids.
 */
export async function expectRecordedWorkPerEpisode(app: LoadedApp, g: RecordedRun): Promise<void> {
  const episodes = goldenEpisodes(g.history);
  expect(episodes.length).toBeGreaterThan(1);
  for (const ep of episodes) {
    const r = await app.runOrchestrator(g.orchestrator, ep.given, g.input, g.instanceId);
    expect(r.error).toBeUndefined();
    const replay = replayFromHistory(topLevelActions(r.state!), ep.given, timerOptions);
    expect(replay.nonDeterminism).toBeUndefined();
    expect(workAsked(replay.newItems)).toEqual(workRecorded(ep.recorded));
  }
}

/** The replay notices a history that does not fit the code: the first activity renamed. */
export async function expectTamperNoticed(app: LoadedApp, g: RecordedRun): Promise<void> {
  const first = g.history.find((e) => e.EventType === EventType.TaskScheduled)!;
  const tampered = g.history.map((e) => (e === first ? { ...e, Name: 'renamedActivity' } : e));
  const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
  expect(replayFromHistory(topLevelActions(r.state!), tampered, timerOptions).nonDeterminism).toMatch(
    /Non-Deterministic/,
  );
}
