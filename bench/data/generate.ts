import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createPrng } from '../../lib/training/prng';

/**
 * Seeded generator of large synthetic CSV datasets for benchmarks: 12 columns (an id, 8 numeric
 * features of different shapes, 2 categoricals, a binary label), about 67 bytes per row, so
 * 750,000 rows make the 50 MB file of the data benchmark. `shift` moves the distributions (0 = the
 * reference population, 1 = clearly drifted) for drift benchmarks and tests.
 *
 *   node dist/bench/data/generate.js --rows 750000 --seed 1 --shift 0 --out /tmp/data.csv
 */

/** Uniform [0, 1) numbers from a seed: the project's seeded generator (identical on every platform). */
export function rng(seed: number): () => number {
  const prng = createPrng(seed);
  return () => prng.next();
}

function normal(rand: () => number): number {
  // Box–Muller; 1 - u keeps log away from 0.
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export const GENERATED_HEADER = 'id,age,income,score,tenure,balance,rate,visits,height,region,plan,label';
const REGIONS = ['north', 'south', 'east', 'west', 'central', 'coast', 'hills', 'metro'];
const PLANS = ['basic', 'plus', 'pro', 'team'];

export interface GenerateOptions {
  rows: number;
  seed: number;
  shift?: number;
}

/** Yields the CSV text in blocks of about 1 MB (header first, LF line ends). */
export function* generateCsv({ rows, seed, shift = 0 }: GenerateOptions): Generator<string> {
  const rand = rng(seed);
  let out = `${GENERATED_HEADER}\n`;
  for (let i = 1; i <= rows; i++) {
    const age = Math.min(90, Math.max(18, Math.round(40 + 12 * normal(rand) + 6 * shift)));
    const income = Math.exp(10.5 + 0.5 * normal(rand) + 0.2 * shift);
    const score = 0.5 + 0.15 * normal(rand) + 0.05 * shift;
    const tenure = Math.floor(rand() * (30 + 10 * shift));
    const balance = 2000 * normal(rand) + 500;
    const rate = rand() ** (1 + shift);
    const visits = Math.floor(-Math.log(1 - rand()) * 4);
    const height = 170 + 9 * normal(rand);
    const region = REGIONS[Math.floor(rand() ** (1 + shift) * REGIONS.length)]!;
    const plan = PLANS[Math.floor(rand() * PLANS.length)]!;
    const label = rand() < 0.3 + 0.3 * score ? 1 : 0;
    out += `${i},${age},${income.toFixed(2)},${score.toFixed(5)},${tenure},${balance.toFixed(2)},${rate.toFixed(4)},${visits},${height.toFixed(2)},${region},${plan},${label}\n`;
    if (out.length > 1 << 20) {
      yield out;
      out = '';
    }
  }
  if (out) yield out;
}

export async function writeGeneratedCsv(path: string, options: GenerateOptions): Promise<number> {
  const ws = createWriteStream(path);
  let bytes = 0;
  for (const block of generateCsv(options)) {
    bytes += Buffer.byteLength(block);
    if (!ws.write(block)) await once(ws, 'drain');
  }
  ws.end();
  await once(ws, 'finish');
  return bytes;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

if (require.main === module) {
  const out = arg('out', 'generated.csv');
  writeGeneratedCsv(out, {
    rows: Number(arg('rows', '750000')),
    seed: Number(arg('seed', '1')),
    shift: Number(arg('shift', '0')),
  })
    .then((bytes) => console.log(`${out}: ${(bytes / 1e6).toFixed(1)} MB`))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
