import { hash, verify, type Algorithm } from "@node-rs/argon2";

// `Algorithm` is a const enum, which has no runtime object under isolated modules (tsx): spell
// Argon2id's value (2) out.
const ARGON2ID = 2 as Algorithm;

/** argon2id cost. The defaults are OWASP's first recommendation (m=19 MiB, t=2, p=1). */
export interface PasswordHashingParams {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export const OWASP_ARGON2ID: PasswordHashingParams = Object.freeze({ memoryKiB: 19_456, iterations: 2, parallelism: 1 });

export const MIN_PASSWORD_LENGTH = 8;
/** Long enough for any passphrase, short enough that hashing stays cheap to ask for. */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Hashes and checks passwords with argon2id. `verifyOrDummy` spends the same work on an unknown
 * account as on a known one, so a login's timing does not tell whether the account exists.
 */
export class PasswordHasher {
  private dummyHash: Promise<string> | null = null;

  constructor(readonly params: PasswordHashingParams = OWASP_ARGON2ID) {}

  hash(password: string): Promise<string> {
    return hash(password, this.options());
  }

  async verify(storedHash: string, password: string): Promise<boolean> {
    try {
      return await verify(storedHash, password);
    } catch {
      // A corrupt stored hash is a failed login, not a crash.
      return false;
    }
  }

  /** Verifies against `storedHash`, or against a dummy hash of the same cost when there is none. */
  async verifyOrDummy(storedHash: string | null, password: string): Promise<boolean> {
    if (storedHash) return this.verify(storedHash, password);
    if (!this.dummyHash) {
      // The first unknown login makes the dummy hash; making it costs one hash, the same work
      // as one verify, so that call must not verify as well or it would take twice as long.
      this.dummyHash = this.hash(`dummy-${Math.random()}`);
      await this.dummyHash;
      return false;
    }
    await this.verify(await this.dummyHash, password);
    return false;
  }

  /** True when `storedHash` was made with other parameters than today's: rehash it at next login. */
  needsRehash(storedHash: string): boolean {
    const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
    if (!match) return true;
    const [, m, t, p] = match.map(Number);
    return m !== this.params.memoryKiB || t !== this.params.iterations || p !== this.params.parallelism;
  }

  private options() {
    return {
      algorithm: ARGON2ID,
      memoryCost: this.params.memoryKiB,
      timeCost: this.params.iterations,
      parallelism: this.params.parallelism,
    };
  }
}
