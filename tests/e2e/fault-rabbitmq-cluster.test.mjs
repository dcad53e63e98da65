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
  awaitHealed, awaitNewLeaders, busiestLeader, killNode, linkEvents, lossFigures, refusalsByDependency, restartNode,
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
/** How long after the election a 503 may still start (the API's link reconnects and redeclares). */
const REFUSED_GRACE_MS = 3000;
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

d.test('RabbitMQ cluster: the leading node killed at 400 msg/s loses nothing, live again within 5 s of the election', { timeout: 300_000 }, async () => {
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
    await restartNode(node);
    s.mark(`node ${node} running in the cluster again`);
    await awaitHealed(cluster, d.vhost);
    s.mark('every quorum queue has its 3 members online');

    await s.settle();
    const report = await s.report();
    const f = await lossFigures(s, killAt, electedAt);
    const refused = refusalsByDependency(d);
    const span = (all = []) => { const list = all.filter((t) => t >= streamAt); return (list.length ? `${list.length}@[${Math.min(...list) - killAt},${Math.max(...list) - killAt}]` : '0'); };
    const streamMs = Math.max(...s.ledger.all.map((r) => r.firstAt)) - Math.min(...s.ledger.all.map((r) => r.firstAt));
    process.stdout.write(`cluster-fault kind=kill rate=${RATE} achievedRate=${Math.round((1000 * report.sent) / Math.max(1, streamMs))} killedNode=${node} leaders=${JSON.stringify(count)} `
      + `electedAfterMs=${f.electedAfterMs} refused503=${f.refused} refusedRabbitmq=${span(refused.rabbitmq)} `
      + `refusedPostgres=${span(refused.postgres)} `
      + `darkMs=${f.darkMs} liveLateMaxMs=${f.lateMaxMs} (${f.lateWhat}) accepted=${report.accepted} lost=${report.lost} `
      + `duplicates=${report.duplicates} gaps=${report.gaps}\n`);
    process.stdout.write(`cluster-links (ms after the kill):\n  ${linkEvents(d, killAt).join('\n  ')}\n`);

    s.assertReport(report, { dlq: 0 });
    assert.equal(report.lost, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.gaps, 0);
    assert.ok(report.accepted >= RATE * 5, `too few messages accepted to be a load test: ${report.accepted}`);
    // 503s for RabbitMQ only while the lost node's queues had no leader (and the API moved);
    // an overloaded machine may refuse for PostgreSQL (pool timeouts), counted apart.
    const rabbitRefusals = (refused.rabbitmq ?? []).filter((t) => t >= streamAt);
    const outside = rabbitRefusals.filter((t) => t < killAt || t > electedAt + REFUSED_GRACE_MS);
    assert.deepEqual(outside.map((t) => t - killAt), [],
      `503s for rabbitmq outside [kill, election + ${REFUSED_GRACE_MS} ms] (ms after the kill; election at +${electedAt - killAt})`);
    assert.notEqual(f.darkMs, null, 'no message sent after the kill arrived live');
    assert.ok(f.lateMaxMs <= LIVE_WITHIN_MS,
      `live delivery came ${f.lateMaxMs} ms after max(accepted, election) for ${f.lateWhat} (limit ${LIVE_WITHIN_MS} ms)`);
  } finally {
    s.close();
  }
});
