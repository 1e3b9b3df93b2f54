/** Frame opcodes, RFC 6455 §5.2. Values 3-7 and 0xB-0xF are reserved and rejected. */
export enum Opcode {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xa,
}

/** Control frames are those whose opcode has the high bit set (RFC 6455 §5.5). */
export function isControl(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

export function isKnownOpcode(opcode: number): opcode is Opcode {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa);
}
