"""Run a command on a pseudo-terminal and bridge it to plain pipes.

Usage: python3 pty-bridge.py [--split-errors] COMMAND [ARGS...]

The command sees a terminal on standard input, output and error (isatty is
true, so it behaves as it would for a person); this script copies its own
standard input to the terminal (keystrokes) and the terminal's output to its
own standard output. With --split-errors the command's standard error is a
second terminal, copied to this script's standard error, so a test can tell
which stream a program chose for each thing it printed. It exits with the
command's exit status, or 124 when the command did not finish within 20
seconds.
"""

import os
import pty
import select
import sys
import time

LIMIT_SECONDS = 20


def read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the terminal's other side is closed
        return b""


def main() -> int:
    args = sys.argv[1:]
    split = bool(args) and args[0] == "--split-errors"
    if split:
        args = args[1:]
    errors_master, errors_slave = os.openpty() if split else (None, None)
    pid, master = pty.fork()
    if pid == 0:
        if split:
            os.dup2(errors_slave, 2)
            os.close(errors_slave)
            os.close(errors_master)
        os.environ["TERM"] = "xterm"
        os.execvp(args[0], args)
    if split:
        os.close(errors_slave)
    stdin = sys.stdin.fileno()
    stdin_open = True
    errors_open = split
    deadline = time.monotonic() + LIMIT_SECONDS
    while time.monotonic() < deadline:
        readable = [master] + ([stdin] if stdin_open else []) + ([errors_master] if errors_open else [])
        ready, _, _ = select.select(readable, [], [], 0.05)
        if stdin in ready:
            data = os.read(stdin, 4096)
            if data:
                os.write(master, data)
            else:
                stdin_open = False
        if errors_open and errors_master in ready:
            data = read_some(errors_master)
            if data:
                os.write(sys.stderr.fileno(), data)
            else:
                errors_open = False
        if master in ready:
            data = read_some(master)
            if not data:
                break
            os.write(sys.stdout.fileno(), data)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return 124
    _, status = os.waitpid(pid, 0)
    # The command has exited: pass on what is left of its errors (bounded by the terminal's buffer).
    while errors_open and select.select([errors_master], [], [], 0)[0]:
        data = read_some(errors_master)
        if not data:
            break
        os.write(sys.stderr.fileno(), data)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
