// Full-jitter exponential backoff (AWS architecture blog): the n-th retry waits a uniform
// random time in [0, min(max, base·2^n)], floored at `minMs` so a retry never spins.

export interface BackoffOptions { minMs?: number; maxMs?: number }

export class Backoff {
  readonly minMs: number;
  readonly maxMs: number;
  attempt = 0;

  constructor({ minMs = 500, maxMs = 20_000 }: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.minMs = minMs;
    this.maxMs = Math.max(minMs, maxMs);
  }

  /** Delay before the next try; grows the ceiling for the one after. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(this.minMs, Math.floor(this.random() * ceiling));
  }

  reset(): void { this.attempt = 0; }
}

/** Resolves after `ms`; rejects with the abort reason when `signal` fires first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
