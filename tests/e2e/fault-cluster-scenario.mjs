// Fault scenario: a RabbitMQ cluster node is killed (kill -9 of its Erlang VM) under load.
// A stack (api, worker, 2 gateways) gets RABBITMQ_URIS of a 3-node cluster
// (scripts/rabbitmq-cluster.sh) and a vhost of its own; the node leading most partition
// queues is killed mid-stream. Promises: every 202 persisted exactly once, in order,
// gap-free, delivered to every participant; 503 only while the lost node's queues have no
// leader (plus the API's reconnect); live delivery back within 5 s of the leader election;
// the node restarted rejoins and every quorum queue has its 3 members online again.
// Prints a `cluster-fault` line with the figures (ms after the kill).
//
// Used by fault-rabbitmq-cluster.test.mjs (the suite: a cluster of its own, short) and
// fault-rabbitmq-cluster.chaos.mjs (`scripts/bench.sh cluster-chaos`: the shared cluster,
// longer and repeated).

import assert from 'node:assert/strict';

import {
  awaitHealed, awaitNewLeaders, busiestLeader, electedOfChat, elections, killNode, linkEvents, lossFigures, refusalsByDependency, restartNode,
  startCluster,
} from './fault-cluster.mjs';
import { Sender, allReady, partitionConsumers, setupScenario, useFaultDeployment } from './fault.mjs';

/** How long after the last election a request may still come in and be refused. */
const REFUSED_GRACE_MS = 1000;
const LIVE_WITHIN_MS = 5000;

/**
 * Registers the deployment and the test. `own`: a cluster of the test's own (else the
 * shared one); `rate` msg/s offered by `lanes` lanes (each waits for its 202) for `secs`
 * seconds, but at least `afterElectionSecs` after the partitions' new leaders; the node
 * is killed once `killAfter` messages were accepted; `minAccepted`: fewer accepted (or
 * fewer than a tenth of them sent after the kill) is no load test.
 */
export function clusterKillScenario({ title, own, rate, secs, lanesPerSender, killAfter, minAccepted, afterElectionSecs = 8 }) {
  const box = { cluster: null };
  const { d } = useFaultDeployment({
    workers: 1,
    gateways: 2,
    // The senders write far above a person's rate: the per-user send limit is not under test.
    env: { RATE_LIMIT_SEND_MAX: '1000000' },
    instance: async () => {
      box.cluster = await startCluster({ own });
      d.extraEnv.RABBITMQ_URIS = await box.cluster.uris(d.vhost);
      return box.cluster;
    },
  });

  d.test(title, { timeout: (secs + 240) * 1000 }, async () => {
    const s = await setupScenario(d, 'rabbitmq-cluster');
    const lanes = s.senders.flatMap((b) => Array.from({ length: lanesPerSender }, (_, j) =>
      new Sender(d, b.account, s.ledger, { label: `${b.label}${j + 1}`, chats: b.chats })));
    for (const b of s.senders) b.close();
    s.senders = lanes;
    const cluster = box.cluster;
    try {
      await run(s, cluster);
    } finally {
      s.close();
    }
  });

  async function run(s, cluster) {
    await partitionConsumers(d, 1);
    await allReady(d);
    const replicas = await awaitHealed(cluster, d.vhost);
    assert.ok(replicas.length >= 9, `partition queues and DLQ expected as quorum queues: ${replicas.map((q) => q.name)}`);

    const streamAt = Date.now();
    // Ends `secs` after it starts, or `afterElectionSecs` after the election if later (a
    // loaded machine answers slowly: the node must die while messages flow).
    s.stream({ perSender: Number.MAX_SAFE_INTEGER, rate: rate / s.senders.length, deadlineMs: (secs + 120) * 1000 });
    await s.acceptedAtLeast(killAfter);
    const { node, count } = await busiestLeader(cluster, d.vhost);
    s.mark(`partition leaders per node ${JSON.stringify(count)}: killing node ${node}`);
    const killAt = await killNode(cluster, node);
    s.mark(`node ${node} killed`);
    const electedAt = await awaitNewLeaders(cluster, node === 1 ? 2 : 1, node, d.vhost);
    s.mark(`every partition has a new leader (+${electedAt - killAt} ms)`);
    s.streamDeadline = Math.max(streamAt + secs * 1000, Date.now() + afterElectionSecs * 1000);
    const restartAt = Date.now();
    await restartNode(cluster, node);
    const rejoinedAt = Date.now();
    s.mark(`node ${node} running in the cluster again`);
    await awaitHealed(cluster, d.vhost);
    const healedAt = Date.now();
    s.mark('every quorum queue has its 3 members online');

    await s.settle();
    const report = await s.report();
    // The elections as the surviving nodes logged them (the CLI poll above only bounds them).
    const elected = elections(cluster, d.vhost, killAt, restartAt, node);
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
    // The first request issued after the kill that got an answer (202 or 503), ms after the kill.
    const answers = s.ledger.all.filter((r) => r.firstAt >= killAt)
      .flatMap((r) => [...(r.acceptedAt !== null ? [r.acceptedAt] : []), ...r.refusedAt.filter((t) => t >= killAt)]);
    const firstAnswerMs = answers.length ? Math.min(...answers) - killAt : null;
    const streamMs = Math.max(...s.ledger.all.map((r) => r.firstAt)) - Math.min(...s.ledger.all.map((r) => r.firstAt));
    process.stdout.write(`cluster-fault kind=kill rate=${rate} achievedRate=${Math.round((1000 * report.sent) / Math.max(1, streamMs))} killedNode=${node} leaders=${JSON.stringify(count)} `
      + `elections=${JSON.stringify([...elected].map(([q, at]) => `${q.split('.').at(-1)}+${at - killAt}`))} `
      + `lastElectionMs=${lastElection - killAt} leadersSeenByCliMs=${electedAt - killAt} firstAnswerAfterKillMs=${firstAnswerMs} `
      + `refused503=${f.refused} refusedBy=${spans} darkMs=${f.darkMs} liveBackAfterElectionMs=${f.darkMs === null ? null : f.darkMs - (lastElection - killAt)} `
      + `liveLateMaxMs=${f.lateMaxMs} (${f.lateWhat}) rejoinMs=${rejoinedAt - restartAt} healMs=${healedAt - rejoinedAt} `
      + `accepted=${report.accepted} lost=${report.lost} duplicates=${report.duplicates} gaps=${report.gaps}\n`);
    process.stdout.write(`cluster-links (ms after the kill):\n  ${linkEvents(d, killAt).join('\n  ')}\n`);
    if (report.lost > 0) {
      // Where a lost message may sit: ready, or delivered to a consumer and never acked.
      const accepted = s.ledger.all.filter((r) => r.accepted);
      const rows = new Set((await s.rows()).map((r) => r.clientMessageId));
      for (const r of accepted.filter((x) => !rows.has(x.cmid))) {
        process.stdout.write(`cluster-lost ${r.sender} "${r.content}" chat=${r.chatId} brokerIds=${r.brokerIds.join('/')} firstAt=+${r.firstAt - killAt} `
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
    assert.ok(report.accepted >= minAccepted, `too few messages accepted to be a load test: ${report.accepted}`);
    const afterKill = s.ledger.all.filter((r) => r.accepted && r.firstAt >= killAt).length;
    assert.ok(afterKill >= report.accepted / 10, `too few messages sent after the kill: ${afterKill} of ${report.accepted}`);
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
  }
}
