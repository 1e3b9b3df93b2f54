/**
 * Caps on open connections, in total and per client address, checked when
 * an upgrade request is taken on: a slot is reserved before the route's
 * hooks run (so a burst of concurrent handshakes cannot all slip past the
 * cap) and released when the upgrade fails or the connection closes.
 */
export class Admission {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    /** Most connections open (or reserved) at once. */
    private readonly maxTotal: number,
    /** Most connections open (or reserved) at once from one address. */
    private readonly maxPerAddress: number,
  ) {}

  /** Whether the per-address cap is in force (the caller then needs the peer's address, a system call). */
  get countsAddresses(): boolean {
    return this.maxPerAddress !== Infinity;
  }

  /**
   * Reserve a slot for a connection from `address`. Answers 0 when
   * reserved, else the HTTP status that refuses it: 503 when the server is
   * full (RFC 9110 §15.6.4: the server cannot take it now), 429 when this
   * address has too many (RFC 6585 §4: too many requests from this client).
   */
  reserve(address: string | undefined): 0 | 429 | 503 {
    if (this.total >= this.maxTotal) return 503;
    if (this.countsAddresses && address !== undefined) {
      const count = this.perAddress.get(address) ?? 0;
      if (count >= this.maxPerAddress) return 429;
      this.perAddress.set(address, count + 1);
    }
    this.total++;
    return 0;
  }

  /** Give back a slot `reserve` granted for `address`. */
  release(address: string | undefined): void {
    this.total--;
    if (!this.countsAddresses || address === undefined) return;
    const count = this.perAddress.get(address) ?? 0;
    if (count <= 1) this.perAddress.delete(address);
    else this.perAddress.set(address, count - 1);
  }
}
