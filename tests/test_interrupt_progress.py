"""Ctrl-C during a conversion with a progress bar (issue 19, point 11): the command acts within
about a second at every compression, even xz (about a second per MiB of text), exits 130,
leaves nothing at the destination or in $TMPDIR, and says so on a line of its own rather than
after the bar's last frame.

The conversions run as a user runs them: a real `acioci` process whose stderr is a terminal
(a pty with a size, or tqdm draws nothing), interrupted once its bar is drawn.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tarfile
import termios
import time
from pathlib import Path

import pytest

import build as fx
from helpers import ROOT

MIB = 1 << 20
# random letters and spaces: about 1 s of xz per MiB, so the writer is far behind the reader
# and its queue is full when the signal lands (the case that took 6-27 s)
LETTERS = bytes(b"abcdefghijklmnopqrstuvwxyz    \n"[i % 31] for i in range(256))
BOUND = 3.0  # seconds from SIGINT to exit; it takes about 0.2 s


@pytest.fixture(scope="module")
def text_aci(tmp_path_factory) -> Path:
    """An uncompressed ACI of 96 one-MiB text files, written a file at a time: several seconds
    of work at any compression on this machine, so the signal lands mid-write."""
    path = tmp_path_factory.mktemp("src") / "text.aci"
    mbytes = json.dumps(fx.manifest("example.com/text", version="1.0.0")).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("manifest")
        info.size, info.mtime = len(mbytes), fx.MTIME
        tf.addfile(info, io.BytesIO(mbytes))
        info = tarfile.TarInfo("rootfs")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, fx.MTIME
        tf.addfile(info)
        for i in range(96):
            info = tarfile.TarInfo(f"rootfs/f{i}")
            info.size, info.mtime = MIB, fx.MTIME
            tf.addfile(info, io.BytesIO(os.urandom(MIB).translate(LETTERS)))
    return path


def screen(raw: bytes) -> list[str]:
    """The lines a terminal shows for `raw`: a carriage return goes back to the start of the
    line and later characters overwrite earlier ones (as tqdm redraws and clears its bar)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw.decode("utf-8", "replace"))
    lines, line, col = [], [], 0
    for ch in text:
        if ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    lines.append("".join(line))
    return [x.rstrip() for x in lines if x.strip()]


def drain(fd: int, timeout: float) -> bytes:
    out = b""
    while select.select([fd], [], [], timeout)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        out += data
    return out


@pytest.mark.parametrize("compression,dest", [("xz", "out.aci"), ("bzip2", "out.aci"),
                                              ("gzip", "out"), ("zstd", "out")])
def test_ctrl_c_acts_at_once_and_leaves_nothing(tmp_path, text_aci, compression, dest):
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmpdir.mkdir()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "convert", "convert", str(text_aci),
                             str(out / dest), "--compression", compression],
                            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env={**os.environ, "TMPDIR": str(tmpdir)})
    os.close(slave)
    try:
        seen, deadline = b"", time.time() + 60
        while b"converting" not in seen and time.time() < deadline and proc.poll() is None:
            seen += drain(master, 0.05)
        assert b"converting" in seen, seen
        time.sleep(0.3)  # the writer's queue fills (xz: far behind the reader)
        assert proc.poll() is None, "finished before the signal: make the input larger"
        proc.send_signal(signal.SIGINT)
        sent = time.time()
        try:
            proc.wait(timeout=30)
        finally:
            took = time.time() - sent
        seen += drain(master, 0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    lines = screen(seen)
    assert proc.returncode == 130, lines
    assert took < BOUND, f"{compression}: Ctrl-C took {took:.1f} s"
    said = [line for line in lines if "interrupted" in line]
    assert said == ["acioci: interrupted; nothing was left at the destination"], lines
    assert "Traceback" not in seen.decode("utf-8", "replace")
    assert list(out.iterdir()) == []
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("kind", ["xz", "bzip2"])
def test_slow_compressors_give_the_same_bytes_however_the_input_is_split(kind):
    """`Compressor` feeds xz and bzip2 in slices so that a cancel acts within one; that must
    not change a byte of the output (outputs are byte-identical for the same input)."""
    from convert.compression import SLOW_SLICE, Compressor

    data = os.urandom(3 * MIB).translate(LETTERS) + os.urandom(SLOW_SLICE + 7)
    blobs = []
    for sizes in ([len(data)], [MIB], [1000, SLOW_SLICE + 1, 3]):
        sink = io.BytesIO()
        comp, off, i = Compressor(kind, sink), 0, 0
        while off < len(data):
            comp.write(data[off:off + sizes[i % len(sizes)]])
            off, i = off + sizes[i % len(sizes)], i + 1
        comp.close()
        blobs.append(sink.getvalue())
    assert blobs[0] == blobs[1] == blobs[2]


@pytest.mark.parametrize("kind", ["xz", "bzip2"])
@pytest.mark.parametrize("as_pieces", [False, True])
def test_abort_does_not_wait_for_the_queued_writes(kind, as_pieces):
    """Eight queued MiB of text are about ten seconds of xz; abort drops them and stops the
    write in hand within a slice, whether they were queued as bytes or, as `TarWriter` hands
    them down, as lists of pieces (bytes and views)."""
    from convert.background import BackgroundWriter
    from convert.compression import Compressor, HashingWriter

    sink = io.BytesIO()
    comp = Compressor(kind, sink)
    background = BackgroundWriter(HashingWriter(comp, threaded=True))
    for _ in range(9):
        data = os.urandom(MIB).translate(LETTERS)
        if as_pieces:
            view = memoryview(data)
            background.writev([view[:512], data[512:70_000], view[70_000:]])
        else:
            background.write(data)
    time.sleep(0.1)  # the thread is inside a write (an unsliced MiB of xz: 0.8 s)
    started = time.time()
    background.abort()
    background.sink.hash.close()
    assert time.time() - started < 0.4
    assert comp.cancelled and not background.thread.is_alive()


def test_the_interrupt_knows_this_pythons_safe_waits():
    """interrupt.py finds the blocking acquires of Condition.wait and of a thread's join in
    this Python's threading.py; a Python where it finds neither (3.13 moved join into C, a
    frozen build has no source) would defer every stop until the wait ends: fail loudly."""
    from convert import interrupt

    names = {code.co_name for code, _ in interrupt._blocking_acquires()}
    assert "wait" in names and names & {"_wait_for_tstate_lock", "join"}, names


def test_a_pipe_send_defers_the_interrupt_without_importing_pipes_up_front():
    """interrupt.py waits while the main thread is sending on a multiprocessing pipe (a
    message cut in half is garbage to its reader), yet a single conversion, which has no
    pipe, does not import multiprocessing for it (~10 ms of every command's start-up)."""
    import multiprocessing.connection

    from convert import interrupt

    def frame_in(filename: str, name: str):
        scope: dict = {}
        exec(compile(f"def {name}():\n    import sys\n    return sys._getframe()\n",
                     filename, "exec"), scope)
        return scope[name]()

    pipes = multiprocessing.connection.__file__
    assert interrupt._unsafe(frame_in(pipes, "send_bytes"))
    assert not interrupt._unsafe(frame_in(pipes, "recv_bytes"))  # a reader's own problem
    assert not interrupt._unsafe(frame_in(__file__, "send_bytes"))
    code = ("import sys, convert.cli, convert.interrupt, typer.main\n"
            "typer.main.get_command(convert.cli.app)\n"
            "print(sorted(m for m in sys.modules if m.startswith('multiprocessing')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
