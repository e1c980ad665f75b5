import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  COMMANDS,
  UsageError,
  main,
  metricsTable,
  runCli,
  watchRun,
  type RunView,
} from '../../../cli/sluice';

async function lines(argv: string[]): Promise<{ code: number; text: string }> {
  const out: string[] = [];
  const code = await main(argv, (l) => out.push(l));
  return { code, text: out.join('\n') };
}

async function failure(argv: string[]): Promise<Error> {
  try {
    await main(argv, () => undefined);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`expected ${argv.join(' ')} to fail`);
}

/** runCli as the process runs it: the exit code it ends with and what it wrote to stderr. */
async function exitOf(argv: string[]): Promise<{ code: number; stderr: string }> {
  const errors: string[] = [];
  const error = jest.spyOn(console, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
  jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const code = await new Promise<number>((resolve) => {
    jest.spyOn(process, 'exit').mockImplementation(((c?: number) => resolve(c ?? 0)) as never);
    runCli(argv);
  });
  error.mockRestore();
  jest.restoreAllMocks();
  return { code, stderr: errors.join('\n') };
}

afterEach(() => jest.restoreAllMocks());

describe('sluice <command> --help prints that command’s own usage and examples', () => {
  it.each(Object.keys(COMMANDS))('%s --help', async (cmd) => {
    const { code, text } = await lines([cmd, '--help']);
    expect(code).toBe(0);
    expect(text.split('\n')[0]).toBe(`Usage: ${COMMANDS[cmd]!.usage}`);
    expect(text).toMatch(new RegExp(`Examples:\\n  sluice ${cmd}\\b`));
    expect(text).not.toMatch(/^Commands:/m); // not the global text
    const other = await lines(['-h', cmd]);
    expect(other.text).toBe(text);
  });

  it('lists its own options: run names --wait and --storage, runs names --pipeline', async () => {
    expect((await lines(['run', '--help'])).text).toMatch(/--wait[\s\S]*--storage CONN/);
    expect((await lines(['runs', '--help'])).text).toMatch(/--pipeline P/);
    expect((await lines(['job', 'test', '--help'])).text).toMatch(/--time-limit SECONDS/);
  });

  it('keeps the global usage for sluice --help (0) and no command at all (2)', async () => {
    const help = await lines(['--help']);
    expect(help.code).toBe(0);
    expect(help.text).toMatch(/^Usage: sluice <command> \[options\]/);
    expect(help.text).toMatch(/sluice <command> --help/);
    expect((await lines([])).code).toBe(2);
  });
});

describe('an unknown option gets the CLI’s own message and exit code 2', () => {
  it.each(Object.keys(COMMANDS))('%s --bogus', async (cmd) => {
    const err = await failure([cmd, 'x', '--bogus']);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(`unknown option '--bogus' for '${cmd}'; see 'sluice ${cmd} --help'`);
    expect(await exitOf([cmd, 'x', '--bogus'])).toEqual({
      code: 2,
      stderr: `sluice: unknown option '--bogus' for '${cmd}'; see 'sluice ${cmd} --help'`,
    });
  });

  it('refuses an option of another command, a missing value and an unknown command with 2', async () => {
    expect((await failure(['runs', '--data', 'x.csv'])).message).toBe(
      "unknown option '--data' for 'runs'; see 'sluice runs --help'",
    );
    expect((await failure(['status', 'r1', '--url'])).message).toBe(
      "option '--url' needs a value; see 'sluice status --help'",
    );
    expect((await failure(['--bogus'])).message).toBe("unknown option '--bogus'; see 'sluice --help'");
    expect((await exitOf(['frobnicate'])).code).toBe(2);
    expect((await exitOf(['run', 'wages'])).stderr).toMatch(/run needs --data FILE or --blob/);
  });
});

/** A fake Sluice API answering GET /api/runs/{id} with the next document of `docs` (the last repeats). */
async function fakeApi(docs: RunView[]): Promise<{ server: Server; url: string }> {
  let i = 0;
  const server = createServer((req, res) => {
    const doc = docs[Math.min(i++, docs.length - 1)];
    res.writeHead(req.url?.startsWith('/api/runs/') ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const base: RunView = {
  id: 'r1',
  pipeline: 'wages',
  status: 'running',
  createdAt: '2026-01-01T00:00:00Z',
  steps: [{ name: 'approve', status: 'running' }],
  source: { kind: 'upload', uri: 'http://127.0.0.1:10000/devstoreaccount1/datasets/x.csv' },
};

describe('run --wait prints the approval links while it waits', () => {
  it('prints each link reviewers were sent once, as they arrive', async () => {
    const waiting = { ...base, status: 'waiting_for_approval' };
    const done = { ...base, status: 'succeeded', steps: [{ name: 'approve', status: 'succeeded' }] };
    const { server, url } = await fakeApi([waiting, waiting, waiting, done]);
    const sent = [
      [{ to: 'ann@example.com', kind: 'request', link: 'http://localhost:7071/api/approvals/a' }],
      [
        { to: 'ann@example.com', kind: 'request', link: 'http://localhost:7071/api/approvals/a' },
        { to: 'bob@example.com', kind: 'escalation', link: 'http://localhost:7071/api/approvals/b' },
      ],
    ];
    let call = 0;
    const out: string[] = [];
    try {
      const run = await watchRun(
        { url, key: undefined, json: false, out: (l) => out.push(l) },
        'r1',
        1,
        undefined,
        () => Promise.resolve(sent[Math.min(call++, 1)]!),
      );
      expect(run.status).toBe('succeeded');
    } finally {
      server.close();
    }
    expect(out.filter((l) => l.includes('/api/approvals/'))).toEqual([
      '    approval link for ann@example.com: http://localhost:7071/api/approvals/a',
      '    escalation for bob@example.com: http://localhost:7071/api/approvals/b',
    ]);
  });

  it('says once why the links cannot be shown (a notifier other than the local outbox)', async () => {
    const waiting = { ...base, status: 'waiting_for_approval' };
    const { server, url } = await fakeApi([waiting, waiting, { ...base, status: 'stopped' }]);
    const out: string[] = [];
    try {
      await watchRun({ url, key: undefined, json: false, out: (l) => out.push(l) }, 'r1', 1, undefined, () =>
        Promise.reject(new Error('artifacts live in Azure')),
      );
    } finally {
      server.close();
    }
    expect(out.filter((l) => l.includes('not shown'))).toEqual([
      '    (the links are not shown here: artifacts live in Azure)',
    ]);
  });
});

describe('sluice status shows the metrics as a table', () => {
  const metrics = {
    training: {
      train: { rmse: 4.12345, r2: 0.31 },
      validation: { rmse: 4.5, r2: null },
    },
    evaluation: {
      primaryMetric: 'rmse',
      candidate: 4.4,
      champion: 4.61,
      championVersion: 3,
      difference: { estimate: -0.21, lower: -0.4, upper: -0.02, confidence: 0.95 },
      passed: true,
      reasons: [{ check: 'minImprovement', passed: true, message: 'rmse better by 0.21' }],
      rows: 107,
    },
  };

  it('one row per metric and a column per split; candidate, production and difference with its interval', () => {
    expect(metricsTable(metrics)).toEqual([
      'training:',
      '  metric   train  validation',
      '  rmse    4.1235      4.5000',
      '  r2      0.3100           —',
      '',
      'evaluation (rmse on 107 holdout rows): passed',
      '                     value                interval',
      '  candidate         4.4000',
      '  production (v3)   4.6100',
      '  difference       -0.2100  95% [-0.4000, -0.0200]',
      '  ✔ rmse better by 0.21',
    ]);
  });

  it('a first model: no production value, and no empty interval column', () => {
    expect(
      metricsTable({
        evaluation: {
          primaryMetric: 'r2',
          candidate: 0.2008,
          champion: null,
          passed: true,
          reasons: [],
          rows: 100,
        },
      }),
    ).toEqual([
      'evaluation (r2 on 100 holdout rows): passed',
      '               value',
      '  candidate   0.2008',
      '  production       —',
    ]);
  });

  it('is what status prints, not one line of JSON', async () => {
    const { server, url } = await fakeApi([{ ...base, status: 'succeeded', metrics }]);
    try {
      const { code, text } = await lines(['status', 'r1', '--url', url]);
      expect(code).toBe(0);
      expect(text).toContain('  metrics:\n    training:\n      metric   train  validation\n');
      expect(text).not.toMatch(/metrics: \{/);
    } finally {
      server.close();
    }
  });
});
