// The common part of the throwaway service instances (instances.mjs): helpers to run
// commands as the services' users and wait on ports and pids, and `Instance`, the
// down/up/restart/stop lifecycle with a last-resort kill when Node exits.

import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';

import { run, sleep } from './harness.mjs';

export const HOST = '127.0.0.1';
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Instances not yet removed, for the last-resort exit handler. */
const live = new Set();

process.once('exit', () => {
  for (const inst of live) {
    try { inst.killNow(); } catch { /* best effort */ }
  }
});

/** uid/gid of a system user (for chown), or null when unknown. */
export function userIds(name) {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

/** Runs a shell command line as `user` when we are root (else as ourselves). */
export function runAs(user, commandLine, options = {}) {
  return isRoot
    ? run('su', [user, '-s', '/bin/sh', '-c', commandLine], options)
    : run('/bin/sh', ['-c', commandLine], options);
}

export const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** Whether something accepts TCP connections on HOST:port right now. */
export function portOpen(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function until(what, predicate, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

export function pidAlive(pid) {
  if (!pid) return false;
  try { process.kill(pid, 0); return true; } catch (err) { return err.code === 'EPERM'; }
}

export function readPid(file) {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0].trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Common lifecycle: `down`/`up` around a stable port, idempotent `stop`, `killNow` for exit. */
export class Instance {
  constructor(kind, dir, port) {
    this.kind = kind;
    this.dir = dir;
    this.port = port;
    this.isUp = false;
    this.removed = null;
    /** {at, what} for every down/up, for reports. */
    this.timeline = [];
    live.add(this);
  }

  note(what) { this.timeline.push({ at: Date.now(), what }); }

  /** Takes it down for `downMs`, then brings it back up on the same port. */
  async restart({ downMs = 0 } = {}) {
    await this.down();
    if (downMs > 0) await sleep(downMs);
    await this.up();
  }

  /** Removes the instance for good (processes and directory). Idempotent. */
  stop() {
    this.removed ??= (async () => {
      try {
        await this.shutdown();
      } catch (err) {
        process.stderr.write(`[instances] ${this.kind} on ${this.port}: graceful stop failed (${err.message.split('\n')[0]}); killing\n`);
      } finally {
        this.killNow();
        live.delete(this);
      }
    })();
    return this.removed;
  }

  /** Synchronous: SIGKILL every process of the instance and remove its directory. */
  killNow() {
    for (const pid of this.pids()) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The instance's own helper's recent log lines, for failure messages. */
  logTail(lines = 30) {
    try {
      return this.logFiles().map((f) => {
        const text = readFileSync(f, 'utf8').trimEnd().split('\n');
        return `----- ${f} -----\n${text.slice(-lines).join('\n')}`;
      }).join('\n');
    } catch (err) {
      return `(no log: ${err.message})`;
    }
  }
}
