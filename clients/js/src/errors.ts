// CourierError: the contract's error shape ({statusCode, error, code, message, details?})
// as a thrown Error, plus `retryAfterMs` from a `Retry-After` header. Status 0 = network error.

export class CourierError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly retryAfterMs: number | undefined;

  constructor(status: number, code: string, message: string, details?: unknown, retryAfterMs?: number) {
    super(message);
    this.name = 'CourierError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }

  /** Worth retrying with the same request: network failure, 429 or 503 (and other 5xx but 500s). */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 503 || this.status === 502
      || this.status === 504;
  }
}

/** Builds the error of a non-2xx response (body already parsed, or null). */
export function errorFromResponse(status: number, body: any, retryAfter: string | null): CourierError {
  const secs = retryAfter === null ? NaN : Number(retryAfter);
  const code = typeof body?.code === 'string' ? body.code : status === 401 ? 'unauthorized' : `http_${status}`;
  const message = typeof body?.message === 'string' ? body.message : `HTTP ${status}`;
  return new CourierError(status, code, message, body?.details, Number.isFinite(secs) ? secs * 1000 : undefined);
}
