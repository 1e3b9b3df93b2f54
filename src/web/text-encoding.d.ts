// The WHATWG Encoding API, present in browsers and in Node alike; declared
// here because browser code is checked against ECMAScript alone (no DOM, no
// Node types), and these two classes are all it uses beyond the language.
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}

declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array, options?: { stream?: boolean }): string;
}
