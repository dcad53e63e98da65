// Fault: a RabbitMQ cluster node is cut off by the network (not killed) under 400 msg/s.
// A throwaway 3-node cluster of scripts/rabbitmq-netns.sh (each node in a network
// namespace of its own, long names, net_ticktime COURIER_PARTITION_TICK s, pause_minority);
// the stack (api, worker, 2 gateways) gets RABBITMQ_URIS of the 3 nodes with
// `?heartbeat=COURIER_PARTITION_HEARTBEAT` (a cut node sends no reset: Courier notices it
// by two missed heartbeats). The node leading most partition queues (of those a Courier
// process is connected to) has its link taken down mid-stream; once every Courier process
// connected to it has moved to another node and the node has paused itself (its AMQP
// listener gone), the link comes up again. Promises: every 202
// persisted exactly once, in order, gap-free, delivered to every participant; 503 for
// RabbitMQ only while the cut node's queues have no leader; live delivery back within 5 s
// of the leader election (for a partition led by another node: within 5 s of the others
// declaring the cut node down, when its deliveries to a consumer on the cut node come
// back; the wait from acceptance alone is printed too); the node rejoins by itself
// (pause_minority) and every quorum queue has its 3 members online again. Prints a
// `cluster-fault kind=partition` line with the windows (ms after the cut).
//
// Needs root (`ip netns`, veth, bridge), as scripts/test.sh runs. Knobs:
// COURIER_CLUSTER_RATE (msg/s, default 400), COURIER_CLUSTER_SECS (stream length, default
// 25), COURIER_PARTITION_TICK (net_ticktime, default 4), COURIER_PARTITION_HEARTBEAT (AMQP
// heartbeat asked for, s, default 2).

import assert from 'node:assert/strict';

import { electedOfChat, lossFigures, refusalsByDependency, linkEvents } from './fault-cluster.mjs';
import {
  awaitHealed, awaitMembership, awaitNewLeaders, awaitPaused, busiestLeader, cutNode, elections, healNode, links, nodedownAt,
  partitionLog, startNetnsCluster,
} from './fault-partition.mjs';
import { Sender, allReady, partitionConsumers, setupScenario, useFaultDeployment } from './fault.mjs';

const envInt = (name, fallback) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const RATE = envInt('COURIER_CLUSTER_RATE', 400);
const SECS = envInt('COURIER_CLUSTER_SECS', 25);
const TICK = envInt('COURIER_PARTITION_TICK', 4);
const HEARTBEAT = envInt('COURIER_PARTITION_HEARTBEAT', 2);
const LANES_PER_SENDER = envInt('COURIER_CLUSTER_LANES', 25);
/** How long after the last election a request may still come in and be refused. */
const REFUSED_GRACE_MS = 1000;
const LIVE_WITHIN_MS = 5000;

const box = { cluster: null };
const { d } = useFaultDeployment({
  workers: 1,
  gateways: 2,
  env: { RATE_LIMIT_SEND_MAX: '1000000' },
  instance: async () => {
    box.cluster = await startNetnsCluster({ tick: TICK });
    d.extraEnv.RABBITMQ_URIS = box.cluster.uris(d.vhost, `heartbeat=${HEARTBEAT}`);
    return box.cluster;
  },
});

d.test('RabbitMQ partition: the leading node cut off at 400 msg/s loses nothing, live again within 5 s of the election, rejoins when healed', { timeout: (SECS + 300) * 1000 }, async () => {
  const s = await setupScenario(d, 'rabbitmq-partition');
  const lanes = s.senders.flatMap((b) => Array.from({ length: LANES_PER_SENDER }, (_, j) =>
    new Sender(d, b.account, s.ledger, { label: `${b.label}${j + 1}`, chats: b.chats })));
  for (const b of s.senders) b.close();
  s.senders = lanes;
  const cluster = box.cluster;
  try {
    await partitionConsumers(d, 1);
    await allReady(d);
    await awaitHealed(cluster, 1, d.vhost);

    const streamAt = Date.now();
    s.stream({ perSender: Math.ceil((RATE * SECS) / lanes.length), rate: RATE / lanes.length });
    await s.acceptedAtLeast(RATE * 3);
    // The node leading most partition queues among those a Courier process is connected
    // to, so that both the elections and Courier's failover are exercised.
    const { count } = await busiestLeader(cluster, d.vhost);
    const used = new Set(Object.values(links(d, Date.now())).map((l) => l.nodeAt + 1));
    const node = [1, 2, 3].filter((n) => used.has(n)).reduce((best, n) => (best === null || count[n] > count[best] ? n : best), null);
    assert.ok(node !== null && count[node] > 0, `no node leads a partition and serves Courier: leaders ${JSON.stringify(count)}, used ${[...used]}`);
    const via = node === 1 ? 2 : 1;
    s.mark(`partition leaders per node ${JSON.stringify(count)}: cutting node ${node} off`);
    const cutAt = await cutNode(cluster, node);
    const electedAt = await awaitNewLeaders(cluster, via, node, d.vhost);
    s.mark(`every partition has a new leader (+${electedAt - cutAt} ms)`);
    const goneAt = await awaitMembership(cluster, via, node, false);
    s.mark(`node ${node} out of the cluster (+${goneAt - cutAt} ms)`);
    // Every Courier process that was on the cut node moves to another one (missed heartbeats).
    const onCut = (l) => l.nodeAt === node - 1;
    const deadline = Date.now() + 60_000;
    while (Object.values(links(d, cutAt)).some((l) => onCut(l) && l.movedAt === null)) {
      assert.ok(Date.now() < deadline, `processes still on the cut node: ${JSON.stringify(links(d, cutAt))}`);
      await new Promise((r) => { setTimeout(r, 100); });
    }
    const moved = Object.entries(links(d, cutAt)).filter(([, l]) => onCut(l));
    s.mark(`Courier off node ${node}: ${moved.map(([p, l]) => `${p}+${l.movedAt - cutAt}`).join(' ') || 'none was on it'}`);
    const pausedAt = await awaitPaused(cluster, node);
    s.mark(`node ${node} paused itself (+${pausedAt - cutAt} ms)`);
    const healAt = await healNode(cluster, node);
    const rejoinedAt = await awaitMembership(cluster, via, node, true);
    s.mark(`node ${node} back in the cluster (+${rejoinedAt - healAt} ms after the heal)`);
    const healedAt = await awaitHealed(cluster, via, d.vhost);
    s.mark(`every quorum queue has its 3 members online (+${healedAt - healAt} ms after the heal)`);

    await s.settle();
    const report = await s.report();
    const elected = elections(cluster, d.vhost, cutAt, healAt, node);
    const partitionElections = [...elected].filter(([q]) => !q.endsWith('.dlq')).map(([, at]) => at);
    const lastElection = partitionElections.length ? Math.max(...partitionElections) : electedAt;
    // A partition whose leader was elsewhere has no election: its deliveries checked out
    // to a consumer on the cut node come back when the others declare the node down.
    const downAt = nodedownAt(cluster, node, cutAt) ?? cutAt;
    const f = await lossFigures(s, cutAt, electedOfChat(elected, downAt));
    // The same wait counted from acceptance alone (what a user sees of a silent node).
    const fromAccepted = await lossFigures(s, cutAt, () => cutAt);
    const refused = refusalsByDependency(d);
    const span = (all) => {
      const list = all.filter((r) => r.end >= streamAt);
      if (!list.length) return '0';
      return `${list.length}@[${Math.min(...list.map((r) => r.start)) - cutAt},${Math.max(...list.map((r) => r.end)) - cutAt}]`;
    };
    const spans = Object.entries(refused).map(([dep, list]) => `${dep}:${span(list)}`).join(',') || 'none';
    const streamMs = Math.max(...s.ledger.all.map((r) => r.firstAt)) - Math.min(...s.ledger.all.map((r) => r.firstAt));
    const movedMs = moved.map(([, l]) => l.movedAt - cutAt);
    process.stdout.write(`cluster-fault kind=partition rate=${RATE} achievedRate=${Math.round((1000 * report.sent) / Math.max(1, streamMs))} `
      + `tick=${TICK} heartbeat=${HEARTBEAT} cutNode=${node} leaders=${JSON.stringify(count)} `
      + `firstElectionMs=${partitionElections.length ? Math.min(...partitionElections) - cutAt : null} lastElectionMs=${lastElection - cutAt} `
      + `leadersSeenByCliMs=${electedAt - cutAt} nodedownMs=${downAt - cutAt} courierMovedMs=${JSON.stringify(movedMs)} `
      + `pausedMs=${pausedAt - cutAt} healMs=${healAt - cutAt} rejoinedAfterHealMs=${rejoinedAt - healAt} healedAfterHealMs=${healedAt - healAt} `
      + `refused503=${f.refused} refusedBy=${spans} darkMs=${f.darkMs} liveLateMaxMs=${f.lateMaxMs} (${f.lateWhat}) liveLateFromAcceptedMaxMs=${fromAccepted.lateMaxMs} `
      + `accepted=${report.accepted} lost=${report.lost} duplicates=${report.duplicates} gaps=${report.gaps}\n`);
    process.stdout.write(`cluster-links (ms after the cut):\n  ${linkEvents(d, cutAt).join('\n  ')}\n`);
    process.stdout.write(`cluster-partition node ${node} (ms after the cut):\n  ${partitionLog(cluster, node, cutAt).slice(0, 20).join('\n  ')}\n`);

    s.assertReport(report, { dlq: 0 });
    assert.equal(report.lost, 0);
    assert.equal(report.duplicates, 0);
    assert.equal(report.gaps, 0);
    assert.ok(report.accepted >= RATE * 5, `too few messages accepted to be a load test: ${report.accepted}`);
    assert.ok(moved.length > 0, 'no Courier process was connected to the cut node: the failover was not exercised');
    const rabbitRefusals = (refused.rabbitmq ?? []).filter((r) => r.end >= streamAt);
    const outside = rabbitRefusals.filter((r) => r.end < cutAt || r.start > lastElection + REFUSED_GRACE_MS);
    assert.deepEqual(outside.map((r) => `${r.start - cutAt}..${r.end - cutAt}`), [],
      `requests refused for rabbitmq answered before the cut, or come in later than ${REFUSED_GRACE_MS} ms after the last election (ms after the cut; last election at +${lastElection - cutAt})`);
    assert.notEqual(f.darkMs, null, 'no message sent after the cut arrived live');
    assert.ok(f.lateMaxMs <= LIVE_WITHIN_MS,
      `live delivery came ${f.lateMaxMs} ms after max(accepted, its partition's election, or the cut node declared down for a partition led elsewhere) for ${f.lateWhat} (limit ${LIVE_WITHIN_MS} ms)`);
  } catch (err) {
    cluster.keepLogs = true;
    throw err;
  } finally {
    s.close();
  }
});
