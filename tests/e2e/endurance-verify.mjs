// Endurance runs, the verdict: every accepted message persisted exactly once, sequences
// without gaps, every device holding every message of its chats once, what nobody sent,
// and how late live delivery was. Rows are streamed from PostgreSQL (`COPY ... TO
// STDOUT`, one line each) so a run of millions of messages is checked in bounded memory.
// Per fault (its window runs until the next fault), how long live delivery stayed dark
// after the faulty part was back up: the longer of `refusedAfterUpMs` (the last send
// refused or failed after it was back: no new message could start its way) and
// `lateAfterUpMs` (the longest a message waited for live delivery after max(its 202,
// back up)).

import { spawn } from 'node:child_process';
import readline from 'node:readline';

import { idHash } from './endurance-client.mjs';
import { sleep } from './harness.mjs';

const HIST_MS = 20_000;

/** p50/p95/p99/max of a histogram with 1 ms buckets (the last bucket: that or more). */
function percentiles(hist, total) {
  const at = (q) => {
    const want = Math.ceil(q * total);
    let seen = 0;
    for (let ms = 0; ms < hist.length; ms++) {
      seen += hist[ms];
      if (seen >= want) return ms;
    }
    return hist.length - 1;
  };
  let max = 0;
  for (let ms = hist.length - 1; ms >= 0; ms--) if (hist[ms]) { max = ms; break; }
  return total ? { p50: at(0.5), p95: at(0.95), p99: at(0.99), max } : null;
}

/**
 * Whether the deployment's broker holds nothing more for the worker: no message ready or
 * unacked in any queue of its vhost but the DLQ. The worker acks a command only once it
 * is committed, so the rows are final then (the traffic has stopped).
 */
async function brokerDrained(d) {
  const { stdout } = await d.infra.rabbitmqctl(['-q', 'list_queues', '--no-table-headers', '-p', d.vhost, 'name', 'messages']);
  return stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([name]) => name)
    .every(([name, messages]) => name.endsWith('.dlq') || Number(messages) === 0);
}

/**
 * Waits (bounded) until every accepted message is stored and the broker is drained
 * (nothing more can be stored, duplicates included); resolves the count of rows.
 */
export async function awaitPersisted(d, accepted, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  const count = async () => Number((await d.sql('SELECT count(*) FROM messages')).trim());
  for (;;) {
    const n = await count();
    if (n >= accepted && await brokerDrained(d)) return count();
    if (Date.now() > deadline) return n;
    await sleep(250);
  }
}

/** Waits (bounded) until every client is connected and holds its chats up to their last sequence. */
export async function awaitClients(d, clients, timeoutMs = 60_000) {
  const rows = await d.sqlJson(`SELECT coalesce(json_object_agg(id, last_sequence), '{}') FROM chats`);
  const deadline = Date.now() + timeoutMs;
  const done = () => clients.every((c) => c.connected && !c.reconnecting
    && [...c.chats].every(([id, t]) => t.contig >= (rows[id] ?? 0)));
  while (!done() && Date.now() < deadline) await sleep(250);
  return done();
}

/** Streams `sql` (a SELECT) as tab-separated rows to `onRow(fields)`. */
function streamRows(d, sql, onRow) {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [d.databaseUrl, '-v', 'ON_ERROR_STOP=1', '-qAtc', `COPY (${sql}) TO STDOUT`]);
    let stderr = '';
    child.stderr.on('data', (c) => { stderr += c; });
    const lines = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => onRow(line.split('\t')));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql: exit ${code}: ${stderr}`))));
  });
}

/**
 * The verdict of a run. `world`: {chats: [{id, members: [userId]}], clients, lanes}; `faults`:
 * [{kind, target, downAt, upAt}] in ms since t0, oldest first.
 */
export async function verify(d, world, faults = []) {
  const { lanes, clients } = world;
  const clientsOf = new Map(world.chats.map((c) => [c.id, clients.filter((x) => c.members.includes(x.userId))]));
  const persisted = lanes.lanes.map(() => []);
  const hist = new Uint32Array(HIST_MS + 1);
  let latencies = 0;
  const r = {
    persisted: 0, unknown: 0, altered: 0, duplicateRows: 0, gaps: 0, undelivered: 0, notLive: 0,
    lost: 0, persistedNotAccepted: 0, samples: [],
  };
  const note = (what) => { if (r.samples.length < 20) r.samples.push(what); };
  const dark = faults.map((f) => ({
    ...f, outageMs: f.upAt - f.downAt, refusedAfterUpMs: 0, lateAfterUpMs: 0, darkAfterUpMs: 0, worst: null, arrivals: 0,
  }));
  const windowOf = (at) => {
    let lo = 0;
    let hi = dark.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (dark[mid].downAt <= at) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  };
  let chat = null;
  let prevSeq = 0;
  await streamRows(d, 'SELECT chat_id, sequence, id, client_message_id, sender_id, content FROM messages ORDER BY chat_id, sequence', (f) => {
    const [chatId, seqText, id, cmid, senderId, content] = f;
    const seq = Number(seqText);
    r.persisted++;
    if (chatId !== chat) { chat = chatId; prevSeq = 0; }
    if (seq !== prevSeq + 1) { r.gaps++; note(`chat ${chatId}: seq ${seq} after ${prevSeq}`); }
    prevSeq = seq;
    const lk = cmid === '\\N' ? null : lanes.decode(cmid);
    if (!lk) { r.unknown++; note(`row ${id} (${cmid}) was sent by nobody in this run`); return; }
    const [li, k] = lk;
    const lane = lanes.lanes[li];
    if (lane.chat.id !== chatId || lane.account.user.id !== senderId || lanes.content(li, k) !== content) {
      r.altered++;
      note(`row ${id} differs from what lane ${li} sent as #${k}`);
    }
    persisted[li][k] = (persisted[li][k] ?? 0) + 1;
    if (persisted[li][k] === 2) { r.duplicateRows++; note(`lane ${li} #${k} stored twice`); }
    const acceptedAt = lane.acceptedAt[k];
    if (!lanes.accepted(li, k)) r.persistedNotAccepted++;
    const h = idHash(id);
    for (const c of clientsOf.get(chatId) ?? []) {
      const t = c.chats.get(chatId);
      if (t.hash[seq] !== h) { r.undelivered++; note(`${c.label} lacks chat ${chatId} seq ${seq}`); continue; }
      const at = t.firstAt[seq];
      if (at === undefined) { r.notLive++; continue; }
      if (acceptedAt === undefined) continue;
      hist[Math.min(HIST_MS, Math.max(0, Math.round(at - acceptedAt)))]++;
      latencies++;
      const w = windowOf(at);
      if (w < 0) continue;
      const late = at - Math.max(acceptedAt, dark[w].upAt);
      dark[w].arrivals++;
      if (late > dark[w].lateAfterUpMs) {
        dark[w].lateAfterUpMs = Math.round(late);
        dark[w].worst = `${c.label} chat ${chatId} seq ${seq}`;
      }
    }
  });
  for (const at of lanes.failedAt) {
    const w = windowOf(at);
    if (w >= 0) dark[w].refusedAfterUpMs = Math.max(dark[w].refusedAfterUpMs, Math.round(at - dark[w].upAt));
  }
  for (const f of dark) f.darkAfterUpMs = Math.max(f.refusedAfterUpMs, f.lateAfterUpMs);
  const lastSeq = await d.sqlJson(`SELECT coalesce(json_object_agg(id, last_sequence), '{}') FROM chats`);
  const maxSeq = await d.sqlJson(`SELECT coalesce(json_object_agg(chat_id, m), '{}') FROM (SELECT chat_id, max(sequence) m FROM messages GROUP BY chat_id) x`);
  for (const c of world.chats) {
    if ((lastSeq[c.id] ?? 0) !== (maxSeq[c.id] ?? 0)) { r.gaps++; note(`chat ${c.id}: last_sequence ${lastSeq[c.id]} vs max ${maxSeq[c.id]}`); }
  }
  lanes.lanes.forEach((lane, li) => {
    for (let k = 0; k < lane.issued; k++) {
      if (lanes.accepted(li, k) && !persisted[li][k]) { r.lost++; note(`lane ${li} #${k} accepted, never stored`); }
    }
  });
  const sum = (key) => clients.reduce((n, c) => n + c.stats[key], 0);
  r.duplicateDeliveries = sum('duplicates');
  r.outOfOrder = sum('outOfOrder');
  r.misrouted = sum('misrouted') + sum('conflicts');
  r.latencyMs = percentiles(hist, latencies);
  r.faults = dark;
  r.clientSamples = clients.flatMap((c) => c.samples).slice(0, 20);
  r.problems = [
    ['lost', r.lost], ['duplicateRows', r.duplicateRows], ['duplicateDeliveries', r.duplicateDeliveries],
    ['gaps', r.gaps], ['undelivered', r.undelivered], ['unknown', r.unknown], ['altered', r.altered],
    ['outOfOrder', r.outOfOrder], ['misrouted', r.misrouted],
  ].filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`);
  return r;
}
