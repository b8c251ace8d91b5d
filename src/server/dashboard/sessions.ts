import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** One logged-in browser: its CSRF synchroniser token and when it expires. */
export interface Session {
  /** sent in forms and the X-CSRF-Token header; compared in constant time */
  csrf: string;
  expiresAt: number;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Equal strings, in time that does not depend on where they differ (both hashed to equal length first). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * Server-side dashboard sessions, held in memory by one node (a restart logs everyone out, which is what an
 * operator restarting a node expects). The cookie carries only a random id; the map is keyed by its SHA-256, so
 * a heap dump does not hand out live cookies. Sessions expire after `ttlMs` without use.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session; returns the cookie value (256 random bits) and the session. */
  create(): { id: string; session: Session } {
    this.sweep();
    const id = randomBytes(32).toString("base64url");
    const session = { csrf: randomBytes(32).toString("base64url"), expiresAt: this.now() + this.ttlMs };
    this.sessions.set(this.key(id), session);
    return { id, session };
  }

  /** The live session for a cookie value, its expiry pushed back; undefined when unknown or expired. */
  touch(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const key = this.key(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    session.expiresAt = this.now() + this.ttlMs;
    return session;
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(this.key(id));
  }

  private key(id: string): string {
    return digest(id).toString("base64url");
  }

  /** drops expired sessions, so abandoned logins do not pile up */
  private sweep(): void {
    const now = this.now();
    for (const [key, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(key);
  }
}

/** Cookies of a request (the Cookie header), without a dependency for twenty lines. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const name = part.slice(0, eq).trim();
    try {
      out.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // a cookie we did not set and cannot read: ignored
    }
  }
  return out;
}
