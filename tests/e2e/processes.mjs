// Child processes: one Courier process (`CourierProcess`) with its output captured, its
// exit observed, readiness polling (GET /readyz) and stop / kill; and the clean
// environment the processes start from.

import { spawn } from 'node:child_process';

import { settings } from './settings.mjs';
import { sleep, within } from './util.mjs';

/** Keeps the last `limit` bytes written to it. */
class OutputTail {
  #chunks = [];
  #size = 0;
  constructor(limit = 1024 * 1024) { this.limit = limit; }
  push(chunk) {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.limit && this.#chunks.length > 1) this.#size -= this.#chunks.shift().length;
  }
  toString(maxBytes = Infinity) {
    const text = Buffer.concat(this.#chunks).toString('utf8');
    return text.length > maxBytes ? `[...]${text.slice(-maxBytes)}` : text;
  }
}

/** Variables of Courier's configuration that must never leak in from the caller's environment. */
const COURIER_ENV_RE = /^(DATABASE_|REDIS_|RABBITMQ_|JWT_|CHAT_|GATEWAY_|WORKER_|CORS_|REFRESH_TOKEN_|PUSH_|PUSHER_|FCM_|PORT$|HOST$|RUST_LOG$)/;

/** The caller's environment without any Courier configuration. */
export function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !COURIER_ENV_RE.test(k)));
}

/** One Courier process: its output is captured, its exit observed, and it can be stopped. */
export class CourierProcess {
  constructor(name, binary, args, { env, cwd, healthUrl }) {
    this.name = name;
    this.healthUrl = healthUrl; // base URL serving /healthz and /readyz
    this.stdout = new OutputTail();
    this.stderr = new OutputTail();
    this.exit = null; // {code, signal, error?} once exited
    /** Set when a test stops or kills the process on purpose (`kill`): its exit is no failure. */
    this.expectedExit = false;
    this.child = spawn(binary, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of ['stdout', 'stderr']) {
      this.child[stream].on('data', (chunk) => {
        this[stream].push(chunk);
        if (settings.verbose) process.stderr.write(prefixLines(`[${name}] `, chunk.toString('utf8')));
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve(this.exit ??= { code, signal }));
      this.child.once('error', (error) => resolve(this.exit ??= { code: null, signal: null, error }));
    });
  }

  get running() { return this.exit === null; }

  describeExit() {
    const e = this.exit;
    if (!e) return 'running';
    if (e.error) return `failed to start: ${e.error.message}`;
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  /** Captured output for diagnostics (tails). */
  logs(maxBytes = 8192) {
    return [`----- ${this.name} (${this.describeExit()}) stderr -----`, this.stderr.toString(maxBytes),
      `----- ${this.name} stdout -----`, this.stdout.toString(maxBytes)].join('\n');
  }

  /** Polls GET /readyz every 100 ms until it answers 200; fails early if the process exits. */
  async waitReady(timeoutMs = settings.readyTimeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.name} ${this.describeExit()} before it became ready\n${this.logs()}`);
      }
      try {
        const res = await fetch(`${this.healthUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
        const body = await res.text();
        if (res.status === 200) return;
        last = `${res.status} ${body.slice(0, 300)}`;
      } catch (err) {
        last = err.cause?.code ?? err.message;
      }
      await sleep(100);
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms (last /readyz: ${last})\n${this.logs()}`);
  }

  /** OS process id (null if it failed to start). */
  get pid() { return this.child.pid ?? null; }

  /**
   * Sends `signal` on purpose (fault injection: 'SIGKILL' for a crash, 'SIGTERM' for a
   * graceful stop); the exit then does not fail the test. Resolves with the exit, or
   * with null if it has not exited after `timeoutMs`.
   */
  async kill(signal = 'SIGKILL', timeoutMs = 30_000) {
    this.expectedExit = true;
    if (!this.running) return this.exit;
    this.child.kill(signal);
    return within(this.exited, timeoutMs);
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit. */
  async stop(timeoutMs = settings.stopTimeoutMs) {
    if (!this.running) return this.exit;
    this.child.kill('SIGTERM');
    const exit = await within(this.exited, timeoutMs);
    if (exit) return exit;
    process.stderr.write(`[e2e] ${this.name} ignored SIGTERM for ${timeoutMs} ms; sending SIGKILL\n`);
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

function prefixLines(prefix, text) {
  return text.replace(/^(?=.)/gm, prefix);
}
