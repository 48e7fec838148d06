/**
 * Reading a JWT's claims (without verifying it: that is the gateway's job)
 * and deciding when to renew it.
 * @module
 */

/** The claims the client reads from a token. */
export interface TokenClaims {
  /** The user id. */
  sub?: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
  /** Issue time, seconds since the epoch. */
  iat?: number;
  [claim: string]: unknown;
}

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/**
 * The payload of a compact JWS, or `null` when `token` is not one. The
 * signature is not checked.
 */
export function decodeToken(token: string): TokenClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims: unknown = JSON.parse(base64UrlDecode(parts[1] ?? ''));
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return null;
    return claims as TokenClaims;
  } catch {
    return null;
  }
}

/** When to renew: options of {@link renewalTime}. */
export interface RenewalPolicy {
  /** Renew at this fraction of the token's lifetime (default 0.8). */
  renewAt?: number;
  /** …or this long before `exp`, whichever is earlier (default 30000 ms). */
  renewBeforeMs?: number;
}

/**
 * The time (ms since the epoch, on the token issuer's clock) at which a token
 * should be renewed: the earlier of `renewAt` of its lifetime and
 * `renewBeforeMs` before `exp`, but never before half its lifetime (so that a
 * token shorter than 2 × `renewBeforeMs` is not renewed in a loop).
 * `obtainedMs` stands in for `iat` when the token has none.
 * Returns `null` for a token without `exp`.
 */
export function renewalTime(claims: TokenClaims | null, obtainedMs: number,
                            policy: RenewalPolicy = {}): number | null {
  if (!claims || typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return null;
  const expMs = claims.exp * 1000;
  const startMs = typeof claims.iat === 'number' && claims.iat * 1000 < expMs
    ? claims.iat * 1000 : Math.min(obtainedMs, expMs);
  const life = expMs - startMs;
  const fraction = Math.min(Math.max(policy.renewAt ?? 0.8, 0.5), 1);
  const byFraction = startMs + fraction * life;
  const byMargin = expMs - (policy.renewBeforeMs ?? 30000);
  return Math.max(Math.min(byFraction, byMargin), startMs + life / 2);
}
