// An event flood and a bystander's delivery latency, shared by abuse-flood.test.mjs (the
// limiting, asserted) and flood-bench.mjs (`scripts/bench.sh flood`: the latency ratio on
// release binaries, printed). The flood runs in a child process (flood-client.mjs), so it
// does not share the measuring event loop.

import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { waitEvent } from './realtime-helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Delivery latency (ms) of `samples` sends from `sender` to `listener` in `chat`, one at a
 * time: REST send → `chat.message.new` arriving. Resolves {p50, p90, p99, max}.
 */
export async function latency(d, { sender, chat, listener }, label, samples) {
  const ms = [];
  for (let i = 0; i < samples; i += 1) {
    const since = listener.events.length;
    const t0 = Date.now();
    const sent = await d.send(sender.accessToken, chat.id, `${label} ${i}`);
    const e = await waitEvent(listener, 'chat.message.new',
      (p) => p.message?.clientMessageId === sent.clientMessageId, { since, timeoutMs: 10_000 });
    ms.push(e.at - t0);
  }
  ms.sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: ms.at(-1) };
}

/**
 * Starts flooding `chat.typing` and `chat.sync` into `chatId` from `sockets` sockets with
 * `token` at `rate` events/s; resolves once flooding, with `stop(minMs)` resolving, once
 * the flood has lasted at least `minMs` and every event has its ack, the ack counts
 * {ok, limited, other, sent} and `ms`, how long it flooded.
 */
export async function startFlood(gatewayUrl, token, chatId, sockets, rate) {
  const child = fork(path.join(here, 'flood-client.mjs'),
    [gatewayUrl, token, chatId, String(sockets), String(rate)], { stdio: 'inherit' });
  const [ready] = await once(child, 'message');
  if (ready !== 'flooding') throw new Error(`flood client: ${JSON.stringify(ready)}`);
  return {
    async stop(minMs = 0) {
      child.send({ stop: true, minMs });
      const [counts] = await once(child, 'message');
      return counts;
    },
    kill() { child.kill(); },
  };
}
