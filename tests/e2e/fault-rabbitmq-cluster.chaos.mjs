// Fault: a RabbitMQ cluster node is killed (kill -9 of its Erlang VM) under 400 msg/s.
// The stack (api, worker, 2 gateways) gets RABBITMQ_URIS of the 3 nodes of
// scripts/rabbitmq-cluster.sh (started here if it is not running) and a vhost of its own;
// the node leading most partition queues is killed mid-stream. Promises: every 202
// persisted exactly once, in order, gap-free, delivered to every participant; 503 only
// while the lost node's queues have no leader (plus the API's reconnect); live delivery
// back within 5 s of the leader election; the node restarted rejoins and every quorum
// queue has its 3 members online again. Prints a `cluster-fault` line with the refused
// window, the election time and the dark window (ms after the kill).
//
// Knobs: COURIER_CLUSTER_RATE (msg/s, default 400), COURIER_CLUSTER_SECS (stream length,
// default 20).

import assert from 'node:assert/strict';

import {
  awaitHealed, awaitNewLeaders, busiestLeader, electedOfChat, elections, killNode, linkEvents, lossFigures, refusalsByDependency, restartNode,
  startCluster,
} from './fault-cluster.mjs';
import { Sender, allReady, partitionConsumers, setupScenario, useFaultDeployment } from './fault.mjs';

const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const RATE = envInt('COURIER_CLUSTER_RATE', 400);
const SECS = envInt('COURIER_CLUSTER_SECS', 20);
/** Senders wait for each 202 (per-sender order is checked): many lanes make the rate. */
const LANES_PER_SENDER = envInt('COURIER_CLUSTER_LANES', 25);
/** How long after the last election a request may still come in and be refused. */
const REFUSED_GRACE_MS = 1000;
const LIVE_WITHIN_MS = 5000;

const box = { cluster: null };
const { d } = useFaultDeployment({
  workers: 1,
  gateways: 2,
  // The senders write far above a person's rate: the per-user send limit is not under test.
  env: { RATE_LIMIT_SEND_MAX: '1000000' },
  instance: async () => {
    box.cluster = await startCluster();
    d.extraEnv.RABBITMQ_URIS = await box.cluster.uris(d.vhost);
    return box.cluster;
  },
});

d.test('RabbitMQ cluster: the leading node killed at 400 msg/s loses nothing, live again within 5 s of the election', { timeout: (SECS + 240) * 1000 }, async () => {
  const s = await setupScenario(d, 'rabbitmq-cluster');
  const lanes = s.senders.flatMap((b) => Array.from({ length: LANES_PER_SENDER }, (_, j) =>
    new Sender(d, b.account, s.ledger, { label: `${b.label}${j + 1}`, chats: b.chats })));
  for (const b of s.senders) b.close();
  s.senders = lanes;
  const cluster = box.cluster;
  try {
    await partitionConsumers(d, 1);
    await allReady(d);
    const replicas = await awaitHealed(cluster, d.vhost);
    assert.ok(replicas.length >= 9, `partition queues and DLQ expected as quorum queues: ${replicas.map((q) => q.name)}`);

    const streamAt = Date.now();
    s.stream({ perSender: Math.ceil((RATE * SECS) / lanes.length), rate: RATE / lanes.length });
    await s.acceptedAtLeast(RATE * 3);
    const { node, count } = await busiestLeader(cluster, d.vhost);
    s.mark(`partition leaders per node ${JSON.stringify(count)}: killing node ${node}`);
    const killAt = await killNode(node);
    s.mark(`node ${node} killed`);
    const electedAt = await awaitNewLeaders(cluster, node === 1 ? 2 : 1, node, d.vhost);
    s.mark(`every partition has a new leader (+${electedAt - killAt} ms)`);
    const restartAt = Date.now();
    await restartNode(node);
    s.mark(`node ${node} running in the cluster again`);
    await awaitHealed(cluster, d.vhost);
    s.mark('every quorum queue has its 3 members online');

    await s.settle();
    const report = await s.report();
    // The elections as the surviving nodes logged them (the CLI poll above only bounds them).
    const elected = elections(d.vhost, killAt, restartAt, node);
    const partitionElections = [...elected].filter(([q]) => !q.endsWith('.dlq')).map(([, at]) => at);
    const lastElection = partitionElections.length ? Math.max(...partitionElections) : electedAt;
    const f = await lossFigures(s, killAt, electedOfChat(elected, killAt));
    const refused = refusalsByDependency(d);
    // Per dependency: how many, and from the first coming in to the last answered (ms after the kill).
    const span = (all) => {
      const list = all.filter((r) => r.end >= streamAt);
      if (!list.length) return '0';
      return `${list.length}@[${Math.min(...list.map((r) => r.start)) - killAt},${Math.max(...list.map((r) => r.end)) - killAt}]`;
    };
    const spans = Object.entries(refused).map(([dep, list]) => `${dep}:${span(list)}`).join(',') || 'none';
    const streamMs = Math.max(...s.ledger.all.map((r) => r.firstAt)) - Math.min(...s.ledger.all.map((r) => r.firstAt));
    process.stdout.write(`cluster-fault kind=kill rate=${RATE} achievedRate=${Math.round((1000 * report.sent) / Math.max(1, streamMs))} killedNode=${node} leaders=${JSON.stringify(count)} `
      + `elections=${JSON.stringify([...elected].map(([q, at]) => `${q.split('.').at(-1)}+${at - killAt}`))} `
      + `leadersSeenByCliMs=${electedAt - killAt} refused503=${f.refused} refusedBy=${spans} `
      + `darkMs=${f.darkMs} liveLateMaxMs=${f.lateMaxMs} (${f.lateWhat}) accepted=${report.accepted} lost=${report.lost} `
      + `duplicates=${report.duplicates} gaps=${report.gaps}\n`);
    process.stdout.write(`cluster-links (ms after the kill):\n  ${linkEvents(d, killAt).join('\n  ')}\n`);
    if (report.lost > 0) {
      // Where a lost message may sit: ready, or delivered to a consumer and never acked.
      const accepted = s.ledger.all.filter((r) => r.accepted);
      const rows = new Set((await s.rows()).map((r) => r.clientMessageId));
      for (const r of accepted.filter((x) => !rows.has(x.cmid))) {
        process.stdout.write(`cluster-lost ${r.sender} "${r.content}" chat=${r.chatId} firstAt=+${r.firstAt - killAt} `
          + `acceptedAt=+${r.acceptedAt - killAt} attempts=${r.attempts} n503=${r.n503} requestMs=${r.requestMs.join('/')}\n`);
      }
      const { stdout } = await d.infra.rabbitmqctl(['-q', 'list_queues', '-p', d.vhost, 'name', 'messages_ready',
        'messages_unacknowledged', 'consumers', 'leader']);
      process.stdout.write(`cluster-queues\n${stdout}\n`);
    }

    s.assertReport(report, { dlq: 0 });
    assert.equal(report.lost, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.gaps, 0);
    assert.ok(report.accepted >= RATE * 5, `too few messages accepted to be a load test: ${report.accepted}`);
    // Requests refused for RabbitMQ were answered after the kill and came in before the
    // last election (+ grace): refused only while the lost node's queues had no leader.
    // An overloaded machine may refuse for PostgreSQL (pool timeouts), counted apart.
    const rabbitRefusals = (refused.rabbitmq ?? []).filter((r) => r.end >= streamAt);
    const outside = rabbitRefusals.filter((r) => r.end < killAt || r.start > lastElection + REFUSED_GRACE_MS);
    assert.deepEqual(outside.map((r) => `${r.start - killAt}..${r.end - killAt}`), [],
      `requests refused for rabbitmq answered before the kill, or come in later than ${REFUSED_GRACE_MS} ms after the last election (ms after the kill; last election at +${lastElection - killAt})`);
    assert.notEqual(f.darkMs, null, 'no message sent after the kill arrived live');
    assert.ok(f.lateMaxMs <= LIVE_WITHIN_MS,
      `live delivery came ${f.lateMaxMs} ms after max(accepted, its partition's election) for ${f.lateWhat} (limit ${LIVE_WITHIN_MS} ms)`);
  } finally {
    s.close();
  }
});
