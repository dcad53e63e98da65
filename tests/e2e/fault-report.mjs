// Fault-injection toolkit, the report of a scenario: the checks of Courier's promises
// (exactly-once persistence, gap-free sequences, per-sender order, delivery to every
// connected participant) from SQL on the deployment's database, the clients' logs and
// the broker; and the `fault-summary` / `fault-detail` lines (see fault.mjs).

import { EVENTS } from './contract.mjs';
import { faultSettings } from './fault-common.mjs';
import { sleep } from './harness.mjs';

/**
 * Computes the report of `scenario` (a `Scenario` from fault-scenario.mjs); every broken
 * promise is listed in `problems`. `dlq` overrides the DLQ count read from the broker.
 */
export async function computeReport(scenario, { dlq: dlqOverride } = {}) {
  const rows = await scenario.rows();
  const chatRows = await scenario.d.sqlJson(`SELECT coalesce(json_agg(json_build_object('id', id, 'lastSequence', last_sequence)), '[]') FROM chats`);
  // The partitions drain and every one has a consumer again (bounded wait).
  let broker = await scenario.brokerState();
  const drained = (b) => b.partitions.every((q) => q.ready === 0 && q.consumers >= 1);
  for (let i = 0; i < 40 && !drained(broker); i++) {
    await sleep(250);
    broker = await scenario.brokerState();
  }
  const dlq = dlqOverride ?? broker.dlq;
  const dispositions = scenario.workerDispositions();
  const recs = scenario.ledger.all;
  const byCmid = new Map(recs.map((r) => [r.cmid, r]));
  const problems = [];
  const sample = (list, n = 5) => list.slice(0, n).join('; ') + (list.length > n ? ` (+${list.length - n} more)` : '');

  // --- persistence: exactly once, nothing unknown, nothing altered ---
  const rowsByCmid = new Map();
  for (const r of rows) rowsByCmid.set(r.clientMessageId, [...(rowsByCmid.get(r.clientMessageId) ?? []), r]);
  const dupRows = [...rowsByCmid.values()].filter((l) => l.length > 1);
  const extraRows = dupRows.reduce((n, l) => n + l.length - 1, 0);
  const accepted = recs.filter((r) => r.accepted);
  const missing = accepted.filter((r) => !rowsByCmid.has(r.cmid));
  const unknown = rows.filter((r) => !byCmid.has(r.clientMessageId));
  const altered = rows.filter((r) => {
    const rec = byCmid.get(r.clientMessageId);
    return rec && (rec.chatId !== r.chatId || rec.senderId !== r.senderId || rec.content !== r.content);
  });
  const persistedUnaccepted = rows.filter((r) => byCmid.get(r.clientMessageId) && !byCmid.get(r.clientMessageId).accepted);
  const retried = recs.filter((r) => r.n503 + r.n429 + r.netErrors > 0);
  const stuck = broker.partitions.filter((q) => q.ready !== 0 || q.consumers < 1);
  if (stuck.length) problems.push(`partition queues not drained or without a consumer 10 s after the stream: ${sample(stuck.map((q) => `${q.queue} ready=${q.ready} consumers=${q.consumers}`), 8)}`);
  if (extraRows) problems.push(`${extraRows} duplicate row(s): ${sample(dupRows.map((l) => `${l[0].clientMessageId} x${l.length} (seq ${l.map((r) => r.sequence).join(',')})`))}`);
  if (missing.length) problems.push(`${missing.length} accepted (202) message(s) not persisted: ${sample(missing.map((r) => `${r.sender} "${r.content}" ${r.cmid}`))}`);
  if (unknown.length) problems.push(`${unknown.length} persisted row(s) nobody sent: ${sample(unknown.map((r) => r.clientMessageId))}`);
  if (altered.length) problems.push(`${altered.length} row(s) differ from what was sent: ${sample(altered.map((r) => `${r.clientMessageId} "${r.content}"`))}`);

  // --- the senders' view ---
  const gaveUp = recs.filter((r) => !r.accepted);
  const unexpected = recs.flatMap((r) => r.unexpected.map((u) => `${r.sender} "${r.content}": ${u}`));
  const badAccepts = recs.flatMap((r) => r.badAccepts);
  if (gaveUp.length) problems.push(`${gaveUp.length} message(s) never got a 202 within ${faultSettings.maxAttempts} attempts / ${faultSettings.messageDeadlineMs} ms: ${sample(gaveUp.map((r) => `${r.sender} "${r.content}" (503 x${r.n503}, network errors x${r.netErrors})`))}`);
  if (unexpected.length) problems.push(`${unexpected.length} unexpected API answer(s): ${sample(unexpected)}`);
  if (badAccepts.length) problems.push(`${badAccepts.length} 202 bodies without the clientMessageId/brokerMessageId: ${sample(badAccepts)}`);

  // --- sequences: 1..n per chat, lastSequence = n ---
  let gaps = 0;
  const gapDetails = [];
  const rowsByChat = new Map();
  for (const r of rows) rowsByChat.set(r.chatId, [...(rowsByChat.get(r.chatId) ?? []), r]);
  for (const chat of scenario.chats) {
    const seqs = (rowsByChat.get(chat.id) ?? []).map((r) => r.sequence).sort((a, b) => a - b);
    const n = seqs.length;
    const distinct = new Set(seqs);
    const max = n ? seqs[n - 1] : 0;
    const missingSeqs = [];
    for (let s = 1; s <= max; s++) if (!distinct.has(s)) missingSeqs.push(s);
    const repeats = n - distinct.size;
    const last = chatRows.find((c) => c.id === chat.id)?.lastSequence ?? 0;
    const bad = missingSeqs.length + repeats + (last !== max ? 1 : 0);
    if (bad) {
      gaps += bad;
      gapDetails.push(`${chat.title}: missing [${missingSeqs.slice(0, 10).join(',')}] repeats ${repeats} lastSequence ${last} vs max ${max}`);
    }
  }
  if (gaps) problems.push(`sequence gaps/repeats: ${gapDetails.join('; ')}`);

  // --- per-chat order of each sender's messages (a sender waits for each 202) ---
  const orderViolations = [];
  const rowOf = (rec) => rowsByCmid.get(rec.cmid)?.[0];
  const streams = new Map();
  for (const rec of [...recs].sort((a, b) => a.index - b.index)) {
    const key = `${rec.sender} ${rec.chatId}`;
    streams.set(key, [...(streams.get(key) ?? []), rec]);
  }
  for (const list of streams.values()) {
    let last = 0;
    let lastRec = null;
    for (const rec of list) {
      const row = rowOf(rec);
      if (!row) continue;
      if (row.sequence <= last) orderViolations.push(`"${rec.content}" got seq ${row.sequence} after "${lastRec.content}" seq ${last}`);
      last = Math.max(last, row.sequence);
      lastRec = rec;
    }
  }
  if (orderViolations.length) problems.push(`${orderViolations.length} message(s) persisted out of send order: ${sample(orderViolations)}`);

  // --- delivery to every connected participant, once per socket ---
  const rowsById = new Map(rows.map((r) => [r.id, r]));
  const undelivered = [];
  const notEveryone = new Set();
  let liveMissed = 0;
  const liveMissedList = [];
  let newDuplicates = 0;
  let savedDuplicates = 0;
  const dupDetails = [];
  const clientProblems = [];
  for (const c of scenario.clients) {
    const live = c.live; // everything that ever arrived live, up to now
    for (const chatId of c.chatIds) {
      for (const r of rowsByChat.get(chatId) ?? []) {
        const got = c.have.get(chatId).get(r.sequence);
        if (!got || got.id !== r.id || got.content !== r.content || got.clientMessageId !== r.clientMessageId) {
          undelivered.push(`${c.label} lacks ${scenario.chatTitle(chatId)} seq ${r.sequence}${got ? ` (holds ${got.id} instead of ${r.id})` : ''}`);
          notEveryone.add(r.id);
        }
        if (!live.get(chatId)?.has(r.sequence)) {
          liveMissed++;
          liveMissedList.push(`${c.label} ${scenario.chatTitle(chatId)}#${r.sequence}`);
        }
      }
      for (const [seq, got] of c.have.get(chatId)) {
        const r = rowsById.get(got.id);
        if (!r || r.sequence !== seq) clientProblems.push(`${c.label} holds ${scenario.chatTitle(chatId)} seq ${seq} = ${got.id}, not persisted as such`);
      }
    }
    for (const s of c.sessions) {
      for (const [id, n] of s.newCount) {
        if (n > 1) {
          newDuplicates += n - 1;
          const r = rowsById.get(id);
          dupDetails.push(`${c.label} socket ${s.n} got ${EVENTS.NEW} x${n} for ${r ? `${scenario.chatTitle(r.chatId)} seq ${r.sequence}` : id}`);
        }
      }
      for (const n of s.savedCount.values()) if (n > 1) savedDuplicates += n - 1;
      for (const o of s.outOfOrder) clientProblems.push(`${c.label} socket ${s.n} out of order: ${o}`);
    }
    for (const x of c.conflicts) clientProblems.push(`${c.label} conflicting copies: ${x}`);
    for (const x of c.misrouted) clientProblems.push(`${c.label}: ${x}`);
  }
  // Offset recovery promises exactly once per device, across its sockets.
  let crossSessionDuplicates = 0;
  const crossDetails = [];
  if (scenario.recovery === 'offset') {
    for (const c of scenario.clients) {
      for (const [key, on] of c.sessionsOf) {
        if (on.size > 1) {
          crossSessionDuplicates += on.size - 1;
          const [chatId, seq] = key.split(':');
          crossDetails.push(`${c.label} got ${scenario.chatTitle(chatId)} seq ${seq} on sockets ${[...on].join(' and ')}`);
        }
      }
    }
    if (crossSessionDuplicates) problems.push(`${crossSessionDuplicates} message(s) delivered to one device on two sockets (auth.offset recovery must not repeat): ${sample(crossDetails)}`);
  }

  // How late live delivery was, after max(accepted, service back up).
  let liveLateMaxMs = null;
  const late = [];
  if (scenario.upAt) {
    for (const c of scenario.clients) {
      for (const chatId of c.chatIds) {
        for (const r of rowsByChat.get(chatId) ?? []) {
          const at = c.firstLive.get(`${chatId}:${r.sequence}`);
          const rec = byCmid.get(r.clientMessageId);
          if (at === undefined || !rec?.acceptedAt) continue;
          late.push({ ms: at - Math.max(rec.acceptedAt, scenario.upAt), what: `${c.label} ${scenario.chatTitle(chatId)}#${r.sequence}` });
        }
      }
    }
    late.sort((a, b) => b.ms - a.ms);
    liveLateMaxMs = late.length ? Math.max(0, late[0].ms) : 0;
  }
  const delivered = rows.filter((r) => !notEveryone.has(r.id)).length;
  // Accepted (202) messages that are not persisted, or that some participant never got.
  const lost = accepted.filter((r) => !rowsByCmid.has(r.cmid) || notEveryone.has(rowsByCmid.get(r.cmid)[0].id)).length;
  if (undelivered.length) problems.push(`${undelivered.length} (client, message) pair(s) never delivered, ${scenario.recovery === 'offset' ? 'live or by auth.offset recovery (no chat.sync in this scenario)' : 'even after chat.sync'}: ${sample(undelivered, 8)}`);
  if (newDuplicates) problems.push(`${newDuplicates} duplicate ${EVENTS.NEW} on one socket: ${sample(dupDetails)}`);
  if (clientProblems.length) problems.push(`${clientProblems.length} client-side inconsistencies: ${sample(clientProblems)}`);

  const duplicates = extraRows + newDuplicates + crossSessionDuplicates;
  const totals = (f) => scenario.clients.reduce((n, c) => n + f(c), 0);
  const latencies = recs.flatMap((r) => r.requestMs).sort((a, b) => a - b);
  const pct = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : 0);
  const report = {
    scenario: scenario.name,
    sent: recs.length,
    accepted: accepted.length,
    persisted: rows.length,
    delivered,
    lost,
    duplicates,
    gaps,
    dlq,
    posts: recs.reduce((n, r) => n + r.posts, 0),
    attempts: recs.reduce((n, r) => n + r.attempts, 0),
    status503: recs.reduce((n, r) => n + r.n503, 0),
    status429: recs.reduce((n, r) => n + r.n429, 0),
    networkErrors: recs.reduce((n, r) => n + r.netErrors, 0),
    retriedMessages: retried.length,
    retriedPersistedOnce: retried.filter((r) => (rowsByCmid.get(r.cmid)?.length ?? 0) === 1).length,
    persistedUnaccepted: persistedUnaccepted.length,
    liveMissed,
    liveMissedSample: liveMissedList.slice(0, 12),
    liveMissedByClient: Object.fromEntries(scenario.clients
      .map((c) => [c.label, liveMissedList.filter((x) => x.startsWith(`${c.label} `)).length])
      .filter(([, n]) => n > 0)),
    savedDuplicates,
    syncRecovered: totals((c) => c.syncs.recovered),
    syncCalls: totals((c) => c.syncs.ok + c.syncs.failed),
    recoveryRefused: scenario.clients.flatMap((c) => c.recoveryRefused.map((x) => `${c.label} ${x}`)),
    crossSessionDuplicates,
    liveLateMaxMs,
    liveLateSample: late.slice(0, 5).map((l) => `${l.what} +${l.ms} ms`),
    syncFailures: totals((c) => c.syncs.failed),
    reconnects: totals((c) => c.reconnects.length),
    requestMs: { p50: pct(0.5), p99: pct(0.99), max: latencies.at(-1) ?? 0 },
    workerRetried: dispositions.retried,
    workerDeadLettered: dispositions.deadLettered,
    readyz503MaxMs: scenario.readyz
      ? Math.max(0, ...Object.values(scenario.readyz).flatMap((r) => r.non200.map((x) => x.ms))) : null,
    problems,
    elapsedMs: Date.now() - scenario.t0,
  };
  return report;
}

/** Prints the summary lines of `report`; `marks` are the scenario's timeline marks. */
export function printSummary(report, marks) {
  process.stdout.write(`fault-summary scenario=${report.scenario} sent=${report.sent} accepted=${report.accepted} `
    + `persisted=${report.persisted} delivered=${report.delivered} duplicates=${report.duplicates} `
    + `gaps=${report.gaps} dlq=${report.dlq}\n`);
  process.stdout.write(`fault-detail scenario=${report.scenario} posts=${report.posts} attempts=${report.attempts} `
    + `status503=${report.status503} status429=${report.status429} networkErrors=${report.networkErrors} retried=${report.retriedMessages} `
    + `retriedPersistedOnce=${report.retriedPersistedOnce} persistedUnaccepted=${report.persistedUnaccepted} `
    + `liveMissed=${report.liveMissed} syncRecovered=${report.syncRecovered} syncCalls=${report.syncCalls} syncFailures=${report.syncFailures} `
    + `${report.liveLateMaxMs === null ? '' : `liveLateMaxMs=${report.liveLateMaxMs} `}`
    + `reconnects=${report.reconnects} savedDuplicates=${report.savedDuplicates} `
    + `workerRetried=${report.workerRetried} workerDeadLettered=${report.workerDeadLettered} `
    + `requestMsP50=${report.requestMs.p50} requestMsP99=${report.requestMs.p99} requestMsMax=${report.requestMs.max} `
    + `${report.readyz503MaxMs === null ? '' : `readyz503MaxMs=${report.readyz503MaxMs} `}elapsedMs=${report.elapsedMs} `
    + `marks=${JSON.stringify(marks.map((m) => `+${m.at}:${m.what}`))}\n`);
}
