import { createInterface, type Interface } from 'node:readline';

/**
 * Line input and output for the interactive commands, in two modes:
 *
 * - interactive (standard input and the stream the prompt is drawn on, output
 *   or errors, are both terminals): a readline prompt; printed lines are
 *   written above the line being typed, which is redrawn after them, so
 *   incoming messages never garble the input;
 * - line mode (anything else): lines are read from standard input as they
 *   come, with backpressure (`lines()` pulls one at a time), and output is
 *   plain lines, one write per line, which pipes pass on at once.
 */

export interface ConsoleStreams {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
  errors: NodeJS.WritableStream & { isTTY?: boolean };
}

export class LineConsole {
  readonly interactive: boolean;
  private readonly streams: ConsoleStreams;
  private readonly prompt: string;
  /** Where the prompt and the line being typed are drawn. */
  private readonly screen: NodeJS.WritableStream & { isTTY?: boolean };
  private reader: Interface | null = null;
  private closed = false;
  private interruptHandler: (() => void) | null = null;
  /** The prompt is showing: nothing typed is being handled right now. */
  private prompted = false;

  /**
   * `promptOn: 'errors'` draws the prompt and the typed line on standard
   * error, for a command whose standard output carries data only
   * (`connect --raw`); interactive then means input and errors are terminals.
   */
  constructor(streams: ConsoleStreams, prompt: string, options: { promptOn?: 'output' | 'errors' } = {}) {
    this.streams = streams;
    this.prompt = prompt;
    this.screen = options.promptOn === 'errors' ? streams.errors : streams.output;
    this.interactive = streams.input.isTTY === true && this.screen.isTTY === true;
  }

  /**
   * The input lines, in order, until end of input or `close()`. Reading
   * starts on the first call; call it once.
   */
  lines(): AsyncIterable<string> {
    const reader = createInterface({
      input: this.streams.input,
      output: this.interactive ? this.screen : undefined,
      terminal: this.interactive,
      prompt: this.prompt,
      crlfDelay: Infinity,
      historySize: this.interactive ? 100 : 0,
    });
    this.reader = reader;
    // Ctrl-C in a terminal arrives here rather than as a signal.
    reader.on('SIGINT', () => this.interruptHandler?.());
    reader.on('line', () => (this.prompted = false));
    this.ready();
    return reader;
  }

  /** Show the prompt again after a typed line was handled. */
  ready(): void {
    if (!this.interactive || this.closed || this.reader === null || this.prompted) return;
    this.prompted = true;
    this.reader.prompt();
  }

  /** What to do on Ctrl-C typed at the prompt (signals are the caller's business). */
  onInterrupt(handler: () => void): void {
    this.interruptHandler = handler;
  }

  /** One or more lines to standard output. */
  print(text: string): void {
    this.write(this.streams.output, text);
  }

  /** One or more lines to standard error. */
  error(text: string): void {
    this.write(this.streams.errors, text);
  }

  /** Stop reading input; the `lines()` iteration ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const reader = this.reader;
    if (reader !== null) {
      if (this.interactive && this.prompted) this.screen.write('\r\x1b[K');
      reader.close();
    }
    // A pipe or terminal left open would keep the process alive.
    const input = this.streams.input as NodeJS.ReadableStream & { destroy?: () => void };
    input.pause();
    if (!this.interactive) input.destroy?.();
  }

  private write(stream: NodeJS.WritableStream, text: string): void {
    const reader = this.reader;
    if (!this.interactive || reader === null || this.closed) {
      stream.write(`${text}\n`);
      return;
    }
    if (!this.prompted) {
      stream.write(`${text}\n`);
      return;
    }
    // Clear the prompt line, print above it, then redraw prompt and typed text.
    this.screen.write('\r\x1b[K');
    stream.write(`${text}\n`);
    reader.prompt(true);
  }
}
