"""Run a command on two pseudo-terminals: one for input and output, one for errors.

Usage: python3 pty-split-bridge.py COMMAND [ARGS...]

As pty-bridge.py, except that the command's standard error is a second
terminal rather than the same one. Both are terminals (isatty is true), as
for a person at a console, but what the command writes to each stays apart:
this script copies its own standard input to the first terminal
(keystrokes), that terminal's output to its own standard output, and the
second terminal's output to its own standard error. A test can then check
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
    errors_master, errors_slave = os.openpty()
    pid, master = pty.fork()
    if pid == 0:
        os.dup2(errors_slave, 2)
        os.close(errors_slave)
        os.close(errors_master)
        os.environ["TERM"] = "xterm"
        os.execvp(sys.argv[1], sys.argv[1:])
    os.close(errors_slave)
    stdin = sys.stdin.fileno()
    stdin_open = True
    errors_open = True
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
        if errors_master in ready:
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
