/**
 * `sluice audit`: the audit trail from the command line (GET /api/audit). `verify` walks the chain
 * and its anchors on the server and exits 1 naming the first bad entry, so a scheduled job or a
 * pipeline can fail on a tampered record.
 */

export const AUDIT_COMMAND: {
  usage: string;
  about: string;
  options: Record<string, { type: 'string' | 'boolean' }>;
  optionHelp: string;
  examples: string[];
} = {
  usage: 'sluice audit verify | sluice audit [--subject S] [--limit N] [--before SEQ]',
  about:
    'verify: check the whole audit chain and its anchors; prints "valid" or the first bad entry\n' +
    'and what was done to it (edited, deleted, reordered, truncated), and exits 1 when it is not valid.\n' +
    'Without verify: the newest entries, one line each (seq, time, event, actor, subject, hash).',
  options: {
    subject: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
  },
  optionHelp: `  --subject S              only entries about S and under it (model/churn, model/churn/3, pipeline/churn)
  --limit N                entries per page (default 50, at most 500)
  --before SEQ             older than SEQ (the "next" the previous page printed)`,
  examples: ['sluice audit verify', 'sluice audit --subject model/churn', 'sluice audit --limit 10 --json'],
};

interface Entry {
  seq: number;
  at: string;
  kind: string;
  actor: string;
  subject: string;
  hash: string;
}

type VerifyAnswer =
  | { valid: true; entries: number; anchors: number; head: { seq: number; hash: string } }
  | {
      valid: false;
      entries: number;
      anchors: number;
      firstBad: { kind: string; seq: number; message: string };
    };

export interface AuditCli {
  get: (path: string) => Promise<unknown>;
  out: (line: string) => void;
  json: boolean;
}

export class AuditUsageError extends Error {}

/** Runs `sluice audit …`; the exit code. */
export async function auditCommand(
  rest: readonly string[],
  options: { subject?: string | undefined; limit?: string | undefined; before?: string | undefined },
  cli: AuditCli,
): Promise<number> {
  const { out } = cli;
  if (rest[0] === 'verify') {
    const r = (await cli.get('/api/audit?verify=true')) as VerifyAnswer;
    if (cli.json) out(JSON.stringify(r, null, 2));
    else if (r.valid) {
      out(
        `valid: ${r.entries} entries, head ${r.head.seq} ${r.head.hash}, ${r.anchors} anchor${r.anchors === 1 ? '' : 's'} checked`,
      );
    } else {
      out(`NOT VALID: entry ${r.firstBad.seq} ${r.firstBad.kind}: ${r.firstBad.message}`);
    }
    return r.valid ? 0 : 1;
  }
  if (rest[0] !== undefined) throw new AuditUsageError(`unknown audit command '${rest[0]}'`);
  const query = new URLSearchParams();
  for (const k of ['subject', 'limit', 'before'] as const) {
    const v = options[k];
    if (v !== undefined) query.set(k, v);
  }
  const q = query.toString();
  const page = (await cli.get(`/api/audit${q ? `?${q}` : ''}`)) as { entries: Entry[]; next?: number };
  if (cli.json) {
    out(JSON.stringify(page, null, 2));
    return 0;
  }
  for (const e of page.entries) {
    out(
      `${String(e.seq).padStart(6)}  ${e.at}  ${e.kind.padEnd(20)} ${e.actor}  ${e.subject}  ${e.hash.slice(0, 16)}…`,
    );
  }
  if (page.entries.length === 0) out('no entries');
  if (page.next !== undefined) out(`more: --before ${page.next}`);
  return 0;
}
