import { UsageFailure } from './args.js';

/**
 * `--exec 'CMD ARGS'`: the text split into an argument vector the way a
 * POSIX shell splits words (XCU §2.2 quoting), and nothing more: no
 * variables, globs, pipes or redirections, so no shell sees the text unless
 * `--shell` asks for one. Words are separated by blanks; 'single quotes'
 * keep everything literally; "double quotes" keep everything but a
 * backslash before \ " $ or `; outside quotes a backslash keeps the next
 * character.
 */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new UsageFailure(`unclosed ' in the command: ${text}`);
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '\\"$`'.includes(text[j + 1]!)) j++;
        word += text[j];
      }
      if (j >= text.length) throw new UsageFailure(`unclosed " in the command: ${text}`);
      i = j;
    } else if (c === '\\') {
      if (i + 1 < text.length) word += text[++i];
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new UsageFailure('the command is empty');
  return words;
}

/** The argument vector to run: the split words, or the text handed to /bin/sh with `--shell`. */
export function commandVector(text: string, shell: boolean): string[] {
  if (!shell) return splitCommand(text);
  if (text.trim() === '') throw new UsageFailure('the command is empty');
  return ['/bin/sh', '-c', text];
}
