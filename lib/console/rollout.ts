import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import type { TrafficFigures } from '../contracts/rollout';
import { STEP_TIMED_OUT } from '../contracts/rollout';
import type { RunDocument } from '../contracts/runDocument';
import { readStepOutputs } from '../contracts/run';
import type { RunRollout } from '../rollout/runRecord';
import { runRolloutSchema } from '../rollout/runRecord';
import { fmt, when, words } from './format';
import { consoleMlflowZipPath } from './paths';

/**
 * The Run page's rollout and deployment parts: a shadow or canary rollout as the run records it
 * (docs/rollout.md: the run's `rollout` field, updated by the rollout's activities, so the page is
 * live as the run is), and the links to the deployed version's evidence pack and MLflow zip.
 */

/** The path of a model version's evidence pack (`GET /api/models/{name}/versions/{v}/evidence`). */
export function evidencePath(modelName: string, version: number): string {
  return `/api/models/${encodeURIComponent(modelName)}/versions/${version}/evidence`;
}

/**
 * The API path of a model version as an MLflow model zip (`GET /api/models/{name}/versions/{v}/mlflow`,
 * function key): for API clients. Console pages link consoleMlflowZipPath (lib/console/paths.ts).
 */
export function mlflowZipPath(modelName: string, version: number): string {
  return `/api/models/${encodeURIComponent(modelName)}/versions/${version}/mlflow`;
}

/** The model version the run deployed (its deploy step's outputs, or the run's `deployment`). */
export function deployedVersionOf(run: RunDocument): { modelName: string; version: number } | undefined {
  const step = run.steps.find((s) => s.name === 'deploy');
  const fromStep = step?.status === 'succeeded' ? readStepOutputs(run.steps, 'deploy') : undefined;
  const d = fromStep ?? run.deployment;
  return d &&
    typeof d.modelName === 'string' &&
    typeof d.version === 'number' &&
    !('windowWait' in d && d.windowWait)
    ? { modelName: d.modelName, version: d.version }
    : undefined;
}

/** The run's rollout record, when it has a valid one. */
export function rolloutOf(run: RunDocument): RunRollout | undefined {
  const parsed = runRolloutSchema.safeParse(run.rollout);
  return parsed.success ? parsed.data : undefined;
}

const pct = (v: number | null | undefined): string =>
  v === null || v === undefined ? '—' : `${fmt(v * 100)} %`;
const num = (v: number | null | undefined, unit = ''): string =>
  v === null || v === undefined ? '—' : `${fmt(v)}${unit}`;

function figuresCells(f: TrafficFigures | undefined, shadow: boolean): SafeHtml {
  if (!f)
    return markup`<td class="n">—</td><td class="n">—</td><td class="n">—</td><td class="n">—</td>${shadow ? markup`<td class="n">—</td>` : ''}`;
  return markup`<td class="n">${f.requests}</td><td class="n">${f.errors} (${pct(f.errorRate)})</td><td class="n">${num(f.latencyP99Ms, ' ms')}</td><td class="n">${num(f.psi)}</td>${shadow ? markup`<td class="n">${pct(f.agreement)}</td>` : ''}`;
}

/** The rollout: strategy and state, the current step, every step with its figures, breaches, notes. */
export function rolloutSection(r: RunRollout): SafeHtml {
  const shadow = r.strategy === 'shadow';
  const state = r.outcome ?? r.state;
  const stateClass = r.outcome === 'completed' ? 'succeeded' : r.outcome ? 'failed' : 'running';
  const current = r.steps.find((s) => s.step === r.step);
  return markup`<p><span class="chip ${stateClass}" data-rollout-state="${state}">${words(state)}</span> ${words(r.strategy)} rollout <span class="mono">${r.rolloutId}</span>${r.modelName ? markup` of ${r.modelName}` : ''}</p>
${
  r.outcome
    ? markup`<p>Ended ${r.endedAt ? markup`<time datetime="${r.endedAt}">${when(r.endedAt)}</time>` : ''}${r.code === STEP_TIMED_OUT ? markup` <span class="chip failed" data-rollout-code="${r.code}">step timed out</span>` : ''}${r.reason ? markup`: ${r.reason}` : ''}</p>`
    : current
      ? markup`<p data-rollout-step="${r.step}">Step ${r.step + 1} of the plan: ${fmt(r.percent)} % of requests ${shadow ? 'copied to' : 'answered by'} the candidate, since <time datetime="${current.startedAt}">${when(current.startedAt)}</time>.${
          current.deadline
            ? markup` Unless it passes first, it times out and rolls back at <time datetime="${current.deadline}" data-rollout-deadline="${current.deadline}">${when(current.deadline)}</time>.`
            : ''
        }</p>`
      : markup`<p>Starting: the candidate gets no traffic yet.</p>`
}
${
  r.steps.length
    ? markup`<div class="scroll" tabindex="0"><table class="rollout"><caption class="sr-only">Rollout steps with their figures</caption>
<thead><tr><th scope="col">Step</th><th scope="col" class="n">Percent</th><th scope="col">Started</th><th scope="col">Outcome</th><th scope="col" class="n">Requests</th><th scope="col" class="n">Errors</th><th scope="col" class="n">p99</th><th scope="col" class="n">PSI</th>${shadow ? markup`<th scope="col" class="n">Agreement</th>` : ''}</tr></thead>
<tbody>${r.steps.map(
        (s) =>
          markup`<tr data-rollout-row="${s.step}"><td>${s.step + 1}</td><td class="n">${fmt(s.percent)} %</td><td><time datetime="${s.startedAt}">${when(s.startedAt)}</time></td><td>${s.outcome ? words(s.outcome) : markup`<span class="sub">in progress</span>`}</td>${figuresCells(s.figures, shadow)}</tr>`,
      )}</tbody></table></div>`
    : ''
}
${
  r.breaches?.length
    ? markup`<h3>Breaches</h3><ul class="plain">${r.breaches.map(
        (b) =>
          markup`<li data-breach="${b.guard}"><strong>${b.guard}</strong>: ${fmt(b.value)} against the limit ${fmt(b.limit)} — ${b.message}</li>`,
      )}</ul>`
    : ''
}
${r.notes?.length ? markup`<h3>Notes</h3><ul class="plain">${r.notes.map((n) => markup`<li>${n}</li>`)}</ul>` : ''}`;
}

/**
 * The deployed version's evidence pack and MLflow zip. The zip goes through the console's own route
 * (consoleMlflowZipPath): the API's needs a function key in Azure, which console users do not hold.
 */
export function deployedLinks(d: { modelName: string; version: number }): SafeHtml {
  return markup`<p>Deployed <a href="/models/${encodeURIComponent(d.modelName)}">${d.modelName}</a> version ${d.version}: <a href="${evidencePath(d.modelName, d.version)}" data-evidence="${d.modelName}:${d.version}">evidence pack</a> · <a href="${consoleMlflowZipPath(d.modelName, d.version)}" data-mlflow-zip="${d.version}">MLflow zip</a></p>`;
}
