// The signed-in session: the token pair kept in sessionStorage (per tab, so two tabs never
// race on the single-use refresh token), and `getToken` for the SDK, which refreshes the
// access token through CourierClient.refresh shortly before it expires, one refresh at a time.

import { CourierClient } from '@courier-chat/client';

const KEY = 'courier.session';
/** Refresh when the access token has less than this left. */
const MARGIN_MS = 60_000;

/**
 * @typedef {{accessToken: string, refreshToken: string, expiresAt: number, user: any}} Session
 */

/** @returns {Session | null} */
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** Stores an AuthResponse (`{accessToken, refreshToken, expiresIn, user}`); returns the Session. */
export function saveAuth(auth) {
  const session = {
    accessToken: auth.accessToken,
    refreshToken: auth.refreshToken,
    expiresAt: tokenExpiry(auth.accessToken) ?? Date.now() + (auth.expiresIn ?? 900) * 1000,
    user: auth.user,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** The `exp` claim of a JWT in ms, or null. */
function tokenExpiry(jwt) {
  try {
    const payload = JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.exp === 'number' ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * A `getToken` for CourierClient: the stored access token while it has more than a minute
 * left, else a refreshed one (single flight). `onSignedOut` runs when the refresh token is
 * refused (the session ended elsewhere).
 * @param {string} baseUrl
 * @param {() => void} onSignedOut
 * @returns {() => Promise<string>}
 */
export function tokenSource(baseUrl, onSignedOut) {
  let inFlight = null;
  return async () => {
    const session = loadSession();
    if (!session) {
      onSignedOut();
      throw new Error('signed out');
    }
    if (session.expiresAt - Date.now() > MARGIN_MS) return session.accessToken;
    inFlight ??= CourierClient.refresh(baseUrl, session.refreshToken)
      .then((auth) => saveAuth(auth).accessToken)
      .catch((err) => {
        if (err?.status === 401 || err?.status === 403) {
          clearSession();
          onSignedOut();
        }
        throw err;
      })
      .finally(() => { inFlight = null; });
    return inFlight;
  };
}
