/**
 * Reading the canvas's binary messages field by field: the one reader of
 * both canvas formats, the browser's (codec.ts, PROTOCOL.md) and the one
 * nodes exchange through the broker (../log-codec.ts). Both put integers in
 * little-endian order and colours as three bytes, red first, so the reads
 * are the same; what differs is what each format calls an error, so a read
 * past the end throws `MessageTooShort` and each codec turns that into its
 * own answer. Pure: Uint8Array and DataView only.
 */

/** A read ran past the end of the message. */
export class MessageTooShort extends Error {
  constructor() {
    super('the message ends too early');
    this.name = 'MessageTooShort';
  }
}

export class ByteReader {
  private readonly view: DataView;

  /** `offset`: where the first read starts (1 skips a type byte already looked at). */
  constructor(
    readonly bytes: Uint8Array,
    public offset = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet read. */
  get left(): number {
    return this.bytes.length - this.offset;
  }

  /** Throws `MessageTooShort` unless `size` more bytes are there. */
  private need(size: number): void {
    if (this.left < size) throw new MessageTooShort();
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return value;
  }

  /** 0xRRGGBB from three bytes, red first. */
  rgb(): number {
    this.need(3);
    const b = this.bytes;
    const o = this.offset;
    this.offset += 3;
    return (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;
  }

  /** The next `length` bytes, as a view into the message (no copy). */
  take(length: number): Uint8Array {
    this.need(length);
    const bytes = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return bytes;
  }

  /** `count` points, each a u16 x and a u16 y, as a flat list [x0, y0, x1, y1, ...]. */
  points(count: number): number[] {
    this.need(count * 4);
    const flat = new Array<number>(count * 2);
    for (let i = 0; i < flat.length; i++) {
      flat[i] = this.view.getUint16(this.offset, true);
      this.offset += 2;
    }
    return flat;
  }
}
