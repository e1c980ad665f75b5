/**
 * Acting as a person on a local Sluice: reading the approval links from the local outbox and
 * deciding through the approval page exactly as a browser does (GET the page, then submit its form
 * as `application/x-www-form-urlencoded` with the pressed button's name and value). Used by the
 * demo, the end-to-end tests and the pipeline benchmark, so all three go through the real page.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../devhost/services/wellKnown';
import resources from '../lib/resources.json';
import type { Notification } from '../lib/notify/types';
import { readOutbox } from '../lib/notify/outbox';

export type OutboxMessage = Notification & { storedAt: string; blob: string };

/**
 * The Blob service of a local Sluice. Without a connection string it is found from any artifact URI
 * of the app (a run's `source.uri`): locally those point into Azurite
 * (`http://127.0.0.1:<port>/devstoreaccount1/...`), whose account key is the published emulator key.
 */
export function localBlobService(artifactUri: string, connectionString?: string): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(connectionString ?? azuriteConnectionFrom(artifactUri));
}

/** The outbox container of a local Sluice (see {@link localBlobService}). */
export function localOutbox(artifactUri: string, connectionString?: string): ContainerClient {
  return localBlobService(artifactUri, connectionString).getContainerClient(resources.blobContainers.outbox);
}

function azuriteConnectionFrom(artifactUri: string): string {
  const url = new URL(artifactUri);
  const account = url.pathname.split('/')[1];
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (!loopback || account !== AZURITE_ACCOUNT) {
    throw new Error(
      `artifacts live at ${url.origin}, not in a local Azurite: reviewers get their links by the configured notifier (NOTIFIER), not from a local outbox`,
    );
  }
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${url.origin}/${AZURITE_ACCOUNT};`;
}

/** Every message the run sent so far, oldest first. */
export async function outboxMessages(outbox: ContainerClient, runId: string): Promise<OutboxMessage[]> {
  if (!(await outbox.exists())) return [];
  return readOutbox(outbox, `${runId}/`);
}

/** Polls the outbox until a message for `runId` matches; rejects after `timeoutMs`. */
export async function waitForMessage(
  outbox: ContainerClient,
  runId: string,
  match: (m: OutboxMessage) => boolean,
  options: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<OutboxMessage> {
  const end = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    options.signal?.throwIfAborted();
    const found = (await outboxMessages(outbox, runId)).find(match);
    if (found) return found;
    if (Date.now() > end) throw new Error(`no matching outbox message for run ${runId}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 250));
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[e.toLowerCase()] ?? whole;
  });
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(
    /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g,
  )) {
    const name = m[1]!.toLowerCase();
    if (name === 'input' || name === 'button' || name === 'form' || name === 'textarea') continue;
    out[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The decision form of an approval page, as a browser sees it. */
export interface DecisionForm {
  action: string;
  method: string;
  /** Hidden and text fields with their current values. */
  fields: Record<string, string>;
  /** Submit buttons: name, value, and whether they are disabled. */
  buttons: { name: string; value: string; label: string; disabled: boolean }[];
}

/** Finds the decision form in the page's HTML; undefined when the page shows none (closed, expired). */
export function parseDecisionForm(html: string): DecisionForm | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const formAttrs = attributes(form[1]!);
  const body = form[2]!;
  const fields: Record<string, string> = {};
  for (const m of body.matchAll(/<input\b([^>]*)>/gi)) {
    const a = attributes(m[1]!);
    if (a.name && (a.type ?? 'text') !== 'submit' && !('disabled' in a)) fields[a.name] = a.value ?? '';
  }
  for (const m of body.matchAll(/<textarea\b([^>]*)>([\s\S]*?)<\/textarea>/gi)) {
    const a = attributes(m[1]!);
    if (a.name && !('disabled' in a)) fields[a.name] = decodeEntities(m[2]!);
  }
  const buttons = [...body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((m) => {
    const a = attributes(m[1]!);
    return {
      name: a.name ?? '',
      value: a.value ?? '',
      label: m[2]!.replace(/<[^>]*>/g, '').trim(),
      disabled: 'disabled' in a,
    };
  });
  return {
    action: formAttrs.action ?? '',
    method: (formAttrs.method ?? 'get').toLowerCase(),
    fields,
    buttons,
  };
}

export interface DecisionResult {
  /** HTTP status of the form POST. */
  status: number;
  /** The page's notice after the POST (title and text), e.g. "Your approval is recorded." */
  notice: string;
  /** Bytes of the page the reviewer saw before deciding. */
  pageBytes: number;
}

/**
 * Opens an approval link and submits its form with the button for `decision`, as a browser would
 * after a person typed `comment` and clicked. Throws when the page has no form or no such button.
 */
export async function decideThroughPage(
  link: string,
  decision: 'approve' | 'reject',
  comment = '',
  userAgent = 'Mozilla/5.0 (sluice reviewer)',
): Promise<DecisionResult> {
  const page = await fetch(link, { headers: { accept: 'text/html', 'user-agent': userAgent } });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`the approval page answered ${page.status}`);
  const form = parseDecisionForm(html);
  if (!form) throw new Error('the approval page shows no decision form (the approval may be closed)');
  const button = form.buttons.find((b) => b.name === 'decision' && b.value === decision);
  if (!button || button.disabled) throw new Error(`the approval page offers no enabled "${decision}" button`);
  const data = new URLSearchParams({ ...form.fields, comment, [button.name]: button.value });
  const target = new URL(form.action || link, link);
  const res = await fetch(target, {
    method: form.method === 'post' ? 'POST' : 'GET',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
      origin: new URL(link).origin,
      referer: link,
      'user-agent': userAgent,
    },
    body: data.toString(),
  });
  const after = await res.text();
  const notice = /<div class="notice[^"]*"[^>]*><strong>([^<]*)<\/strong>(?:<div>([^<]*)<\/div>)?/i.exec(
    after,
  );
  const text = decodeEntities([notice?.[1], notice?.[2]].filter(Boolean).join(' '))
    .replace(/\s+/g, ' ')
    .trim();
  return { status: res.status, notice: text, pageBytes: Buffer.byteLength(html) };
}
