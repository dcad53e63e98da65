// Fault-injection toolkit: a steady stream of sends from several senders into several
// chats, with resilient clients connected, while a test breaks something; then the
// checks of Courier's promises (at-least-once transport, exactly-once persistence,
// per-chat order) against the deployment's database and the clients' logs.
//
// Client behaviour modelled here (what a correct Courier client does):
//  - a sender POSTs each message with a fresh clientMessageId and, on 503 or a network
//    error, retries with the SAME clientMessageId (bounded attempts, backoff, honouring
//    Retry-After); it records what finally got a 202;
//  - a socket client records every `chat.message.new` / `chat.message.saved` per socket;
//    when its socket drops it reconnects to the next gateway in its list and calls
//    `chat.sync` with, per chat, the highest sequence it holds without a gap (so messages
//    lost live are fetched), paging while `hasMore`; it syncs once more at the end.
//
// Each scenario prints one line:
//   fault-summary scenario=<name> sent=N accepted=N persisted=N delivered=N duplicates=N gaps=N dlq=N
// where sent = distinct messages (clientMessageIds) the senders tried, accepted = those that
// got a 202, persisted = rows in `messages`, delivered = persisted messages that every
// connected participant ended with (live or through chat.sync), duplicates = extra rows
// per clientMessageId plus `chat.message.new` received twice on one socket, gaps = missing
// or repeated sequences (and lastSequence mismatches), dlq = messages in the DLQ.
// A `fault-detail` line follows with the retry/outage/live-delivery counters.
//
// This file is the entry point the fault tests import from; the parts live in:
//   fault-common.mjs    broker names, knobs (`faultSettings`), small helpers
//   fault-senders.mjs   the ledger and the retrying senders
//   fault-client.mjs    failing-over socket clients with `chat.sync` recovery
//   fault-scenario.mjs  deployment, users, chats, clients, senders; the `Scenario` (stream, settle)
//   fault-report.mjs    the checks of a scenario and its summary lines
//   fault-probes.mjs    /readyz watching, AMQP and Redis probes, `outage`

export {
  DEFAULT_DLQ, DEFAULT_EXCHANGE, DEFAULT_QUEUE_PREFIX, PARTITIONS, eventually, faultSettings, httpRequest,
  partitionOf,
} from './fault-common.mjs';
export { Ledger, Sender } from './fault-senders.mjs';
export { FaultClient } from './fault-client.mjs';
export { Scenario, createUsers, setupScenario, useFaultDeployment } from './fault-scenario.mjs';
export {
  allReady, assertReadyzNamed, gatewayRoutingState, namedInReadyz, outage, partitionConsumers, watchReadyz, withAmqp,
} from './fault-probes.mjs';
