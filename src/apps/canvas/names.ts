import { type CanvasError } from './wire/codec.js';

/**
 * Visitors' names and colours: the rule a chosen name must follow, the name
 * made up for a visitor who chose none, and the colour the server gives
 * each visitor. Pure.
 */

/** Longest name, in characters (code points). */
export const MAX_NAME_LENGTH = 24;

export type NameCheck = { ok: true; name: string } | { ok: false; error: CanvasError };

/**
 * A name as kept and shown: trimmed, in Unicode NFC (so the same name typed
 * on two systems is the same string), 1 to 24 characters, none of them a
 * control, format, private-use or unassigned character (nothing invisible
 * or able to reorder the text around it).
 */
export function checkName(raw: string): NameCheck {
  const name = raw.normalize('NFC').trim();
  if (name === '') return invalid('A name cannot be empty.');
  if ([...name].length > MAX_NAME_LENGTH) return invalid(`A name has at most ${MAX_NAME_LENGTH} characters.`);
  if (/\p{C}/u.test(name)) return invalid('A name cannot contain control or invisible characters.');
  return { ok: true, name };
}

function invalid(message: string): NameCheck {
  return { ok: false, error: { code: 'invalid_name', message } };
}

// prettier-ignore
const ADJECTIVES = ['Amber', 'Brisk', 'Coral', 'Dusky', 'Eager', 'Fern', 'Gentle', 'Hazel', 'Indigo', 'Jolly', 'Keen', 'Lucky', 'Mossy', 'Nimble', 'Olive', 'Plucky', 'Quiet', 'Rusty', 'Sunny', 'Teal'];
// prettier-ignore
const ANIMALS = ['Heron', 'Otter', 'Badger', 'Finch', 'Lynx', 'Marten', 'Newt', 'Owl', 'Puffin', 'Quail', 'Raven', 'Seal', 'Stoat', 'Tern', 'Vole', 'Wren', 'Yak', 'Zebu', 'Gecko', 'Ibis'];

/**
 * A name for a visitor who chose none, such as "Coral Otter 7". Made from the
 * id, so it is stable for a connection; names need not be unique (the id is
 * what tells visitors apart), but the number keeps equal ones rare.
 */
export function generatedName(id: number): string {
  const adjective = ADJECTIVES[id % ADJECTIVES.length]!;
  const animal = ANIMALS[Math.floor(id / ADJECTIVES.length) % ANIMALS.length]!;
  return `${adjective} ${animal} ${id % 100}`;
}

/**
 * The colour of visitor `id`, 0xRRGGBB: hues a golden angle (about 137.5°)
 * apart, so consecutive visitors get clearly different colours, at a
 * saturation and lightness dark enough for white label text on it.
 */
export function visitorColour(id: number): number {
  const hue = (id * 137.50776405) % 360;
  return hslToRgb(hue, 0.7, 0.42);
}

/** HSL (hue in degrees, saturation and lightness 0..1) to 0xRRGGBB. */
export function hslToRgb(hue: number, saturation: number, lightness: number): number {
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const section = hue / 60;
  const second = chroma * (1 - Math.abs((section % 2) - 1));
  const [r, g, b] =
    section < 1 ? [chroma, second, 0]
    : section < 2 ? [second, chroma, 0]
    : section < 3 ? [0, chroma, second]
    : section < 4 ? [0, second, chroma]
    : section < 5 ? [second, 0, chroma]
    : [chroma, 0, second];
  const base = lightness - chroma / 2;
  const byte = (channel: number): number => Math.round((channel + base) * 255);
  return (byte(r) << 16) | (byte(g) << 8) | byte(b);
}
