"""acioci batch --cluster: the same bytes and report as a local batch, a real scheduler with a
worker killed mid-run, Ctrl-C, and what is refused. Only loopback addresses; every wait is
bounded. Without Dask the cluster tests skip locally and fail under CI=true."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import build as fx
from helpers import ROOT
from test_batch import make_batch

E = fx.entry
TMP_MARK = ".acioci-tmp-"


def need_dask():
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("dask[distributed] is not installed (pip install -e '.[test]')")
        pytest.skip("dask[distributed] not installed")


def batch(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "convert", "batch", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(f"*{TMP_MARK}*")]


def without_timings(report: dict) -> dict:
    for r in report["records"]:
        r["seconds"] = 0
    return report


def big_store(d: Path, n: int) -> None:
    """ACIs big enough that converting one takes a while (seconds to minutes of batch)."""
    d.mkdir()
    for i in range(n):
        fx.write_aci(d / f"big{i}.aci", fx.manifest(f"example.com/big{i}"),
                     [E(f"blob{j}", data=os.urandom(4 << 20)) for j in range(5)],
                     compression="none")


def converters_of(proc: subprocess.Popen) -> list[int]:
    """The converter processes (cluster_child) whose parent is in `proc`'s process group."""
    group, found = set(), []
    stats = {}
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            stats[int(d.name)] = (int(stat[1]), int(stat[2]), (d / "cmdline").read_bytes())
        except (OSError, ValueError):
            continue
    group = {pid for pid, (_, pgrp, _) in stats.items() if pgrp == proc.pid}
    for pid, (ppid, _, cmd) in stats.items():
        if ppid in group and b"convert.cluster_child" in cmd:
            found.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def test_a_local_batch_never_imports_dask():
    code = "import convert.cli, convert.batch, sys; assert 'dask' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_without_dask_the_error_says_what_to_install(tmp_path):
    (tmp_path / "in").mkdir()
    fx.write_aci(tmp_path / "in" / "x.aci", fx.manifest("example.com/x"), [])
    code = ("import sys; sys.modules['distributed'] = None; from convert.cli import main; "
            f"sys.argv = ['acioci', 'batch', {str(tmp_path / 'in')!r}, '--to', 'oci', "
            f"'--out', {str(tmp_path / 'out')!r}, '--cluster', 'local:2']; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "pip install 'acioci[cluster]'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, says", [
    (["--cluster", "nowhere"], "tcp://HOST:PORT"),
    (["--cluster", "local:0"], "local:N"),
    (["--cluster", "local:2", "--jobs", "2"], "--jobs is for a batch on this machine"),
    (["--cluster", "local:2", "--scheduler-file", "f.json"], "not both"),
    (["--scheduler-file", "/nonexistent/scheduler.json"], "no such file"),
])
def test_what_is_refused(tmp_path, args, says):
    need_dask()
    (tmp_path / "in").mkdir()
    fx.write_aci(tmp_path / "in" / "x.aci", fx.manifest("example.com/x"), [])
    proc = batch(tmp_path / "in", "--to", "oci", "--out", tmp_path / "out", *args, timeout=120)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_converter_says_which_failures_another_worker_may_not_have(tmp_path):
    """A bad input is final; an unreadable path may be one mount's problem."""
    from convert import cluster_child
    from convert.batch import Job
    from convert.options import ConvertOptions

    (tmp_path / "bad.aci").write_bytes(b"\x1f\x8b" + b"\0" * 100)
    for name, retry in (("bad.aci", False), ("missing.aci", True)):
        job = Job(str(tmp_path / name), str(tmp_path / "out" / name[:-4]), 1)
        data = json.loads(cluster_child.payload(job, "oci", ConvertOptions(), str(tmp_path / "out"),
                                                False, str(tmp_path)))
        outcome = cluster_child.convert(data)
        assert outcome["record"]["status"] == "failed" and outcome["retry"] is retry
        assert name in outcome["record"]["error"]


class _FakeFuture:
    def __init__(self, key, outcome):
        self.key, self.outcome = key, outcome

    def add_done_callback(self, fn):
        fn(self)

    def result(self, timeout=None):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _FakeDask:
    """What _Run uses of distributed, with a script of task outcomes: each submit answers
    with the next outcome for its job."""

    class KilledWorker(Exception):
        pass

    class Event:
        def __init__(self, name, client=None):
            self.name = name

        def set(self):
            pass

    def __init__(self, script):
        self.script, self.submits = script, []

    def nthreads(self):
        return {"tcp://w1": 1, "tcp://w2": 1}

    def submit(self, fn, data, stop_name, key, **where):
        job = json.loads(data)["job"]["source"]
        self.submits.append((job, where))
        return _FakeFuture(key, self.script[job].pop(0))

    def cancel(self, futures):
        pass


def test_what_is_retried_where_and_how_often(tmp_path):
    """The client's side of the retry rules, on a scripted cluster: a bad input is final at
    once; a retryable failure goes to a worker that has not tried it, 3 tries in all, and the
    last error is the record; a dead converter is retried; a job that killed workers fails."""
    from convert import cluster
    from convert.batch import Job, Record, Work
    from convert.options import ConvertOptions

    def rec(src, status, error=None):
        return {"kind": "record", "worker": "tcp://w1", "retry": error == "io",
                "descriptor": None, "record": {"source": src, "destination": src + ".out",
                                               "status": status, "bytes": 1, "seconds": 0.1,
                                               "error": error, "result": None}}

    again = dict(rec("io", "failed", "io"), worker="tcp://w2")
    script = {"bad": [rec("bad", "failed", "bad input")],
              "io": [rec("io", "failed", "io"), again, rec("io", "failed", "io")],
              "flaky": [{"kind": "crashed", "worker": "tcp://w1", "error": "died"},
                        rec("flaky", "converted")],
              "oom": [_FakeDask.KilledWorker("3 workers lost")]}
    fake = _FakeDask(script)
    jobs = [Job(name, name + ".out", 1) for name in script]
    records: list[Record] = []
    run = cluster._Run(fake, fake, jobs, Work("oci", ConvertOptions(), str(tmp_path)),
                       records.append)
    assert run.run() is False
    got = {r.source: r for r in records}
    assert got["bad"].status == "failed" and got["bad"].error == "bad input"
    assert got["io"].status == "failed" and got["io"].error == "io"
    assert got["flaky"].status == "converted"
    assert got["oom"].status == "failed" and "lost" in got["oom"].error
    tries = [where for job, where in fake.submits if job == "io"]
    # anywhere; then the worker that has not tried; then, both having tried, anywhere again
    assert tries == [{}, {"workers": ["tcp://w2"], "allow_other_workers": True}, {}]
    assert all(script[job] == [] for job in script)
    assert [where for job, where in fake.submits if job == "flaky"][1]["workers"] == ["tcp://w2"]


@pytest.mark.parametrize("one_layout", [False, True], ids=["per-input", "one-layout"])
def test_local_cluster_writes_what_a_local_batch_writes(tmp_path, one_layout):
    """A chain (app on base), ACIs and oci-archives, a broken ACI and a truncated archive;
    relative paths, so the client's working directory must reach the converters."""
    need_dask()
    make_batch(tmp_path / "in")
    flags = ["--one-layout"] if one_layout else []
    reports = {}
    for how, extra in (("local", ["--jobs", "2"]), ("cluster", ["--cluster", "local:2"])):
        (tmp_path / how).mkdir()
        proc = batch("../in", "--to", "oci", "--out", "out", "--report", "report.json",
                     *flags, *extra, cwd=tmp_path / how)
        assert proc.returncode == 1, proc.stderr  # the two bad inputs
        assert "Traceback" not in proc.stderr
        reports[how] = without_timings(json.loads((tmp_path / how / "report.json").read_text()))
    assert reports["cluster"] == reports["local"]
    assert reports["local"]["summary"] == {"converted": 22, "skipped": 0, "failed": 2,
                                           "interrupted": False}
    assert files(tmp_path / "cluster" / "out") == files(tmp_path / "local" / "out")
    assert not leftovers(tmp_path)
    # a rerun skips what is there, as locally
    proc = batch("../in", "--to", "oci", "--out", "out", "--json", *flags,
                 "--cluster", "local:2", cwd=tmp_path / "cluster")
    assert json.loads(proc.stdout)["summary"] == {"converted": 0, "skipped": 22, "failed": 2,
                                                  "interrupted": False}


def test_a_quiet_local_cluster_batch_prints_nothing(tmp_path):
    """-q means nothing on stderr. The in-process cluster's event loop could log a closed
    connection with its traceback after the batch had ended (4 runs in 40 did); 12 runs
    caught it with a chance of about 70%, and every run must be silent."""
    need_dask()
    (tmp_path / "in").mkdir()
    fx.write_aci(tmp_path / "in" / "one.aci", fx.manifest("example.com/one"), [E("f", data=b"x")])
    for i in range(12):
        proc = batch(tmp_path / "in", "--to", "oci", "--out", tmp_path / f"out{i}", "-q",
                     "--cluster", "local:2")
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert (tmp_path / f"out{i}" / "one" / "index.json").is_file()


def test_cluster_cleanup_removes_only_provably_stale_temporaries(tmp_path):
    """The cluster path cleans by the local batch's rule: a temporary of a live process here,
    or of another host, is never removed (it used to remove every one at the end of a run); a
    provably dead one is."""
    need_dask()
    from convert.atomic import host_tag, process_start

    src = tmp_path / "in"
    src.mkdir()
    fx.write_aci(src / "x.aci", fx.manifest("example.com/x"), [E("f", data=b"x")])
    out = tmp_path / "out"
    out.mkdir()
    dead = 2 ** 22 + 1  # above pid_max's default: no such process
    live = subprocess.Popen(["sleep", "120"])
    try:
        here, start = host_tag(), process_start(live.pid)
        keep = {"live": f".a{TMP_MARK}{live.pid}-{here}-{start}-0001",
                "other-host": f".b{TMP_MARK}{dead}-{'f' * 12}-{start}-0002"}
        gone = {"dead": f".c{TMP_MARK}{dead}-{here}-{start}-0003"}
        for name in [*keep.values(), *gone.values()]:
            (out / name).mkdir()
        (out / keep["live"] / "part").write_bytes(b"being written")
        proc = batch(src, "--to", "oci", "--out", out, "-q", "--cluster", "local:2")
        assert proc.returncode == 0, proc.stderr
        left = {p.name for p in out.iterdir()}
        assert {k for k, n in keep.items() if n not in left} == set()
        assert {k for k, n in gone.items() if n in left} == set()
        assert (out / keep["live"] / "part").read_bytes() == b"being written"
        assert (out / "x" / "index.json").is_file()
    finally:
        live.kill()
        live.wait()


def _dask_cli() -> str:
    return str(Path(sys.executable).parent / "dask")


class _Cluster:
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1, each in a process
    group of its own (a worker's group is its nanny, its worker process and what they start)."""

    def __init__(self, tmp: Path) -> None:
        self.file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.log = open(tmp / "dask.log", "wb")
        self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                     str(self.file), "--no-dashboard"])
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.file.exists(), "the scheduler wrote no scheduler file in 60 s"
        time.sleep(0.2)  # written in one go, but let it land
        self.address = json.loads(self.file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        self.workers = [self._start(["worker", self.address, "--nworkers", "1", "--nthreads",
                                     "1", "--no-dashboard", "--host", "127.0.0.1"])
                        for _ in range(2)]
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)

    def _start(self, args: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen([_dask_cli(), *args], stdout=self.log, stderr=self.log,
                                start_new_session=True, cwd="/")
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(proc)
        self.log.close()


@pytest.fixture
def dask_cluster(tmp_path):
    need_dask()
    cluster = _Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


def test_a_real_scheduler_and_a_worker_killed_mid_run(tmp_path, dask_cluster):
    src = tmp_path / "in"
    make_batch(src)
    ref = batch(src, "--to", "oci", "--out", tmp_path / "ref", "--jobs", "2", "--json")
    got = batch(src, "--to", "oci", "--out", tmp_path / "got", "--json",
                "--cluster", dask_cluster.address)
    assert got.returncode == 1 and "Traceback" not in got.stderr, got.stderr
    assert files(tmp_path / "got") == files(tmp_path / "ref")
    assert (json.loads(got.stdout)["summary"] == json.loads(ref.stdout)["summary"]
            == {"converted": 22, "skipped": 0, "failed": 2, "interrupted": False})

    # a store into one layout; one worker (nanny, worker, converter) killed while converting
    big = tmp_path / "big"
    big_store(big, 8)
    ref = batch(big, "--to", "oci", "--out", tmp_path / "big-ref", "--one-layout", "--jobs", "2",
                "-q")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "big-out"
    proc = subprocess.Popen([sys.executable, "-m", "convert", "batch", str(big), "--to", "oci",
                             "--out", str(out), "--one-layout", "--json",
                             "--scheduler-file", str(dask_cluster.file)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = dask_cluster.workers[0]
    try:
        # killed while its converter builds an image: the scratch beside the layout is named
        # for the converter's PID
        deadline, orphans = time.monotonic() + 120, []
        while time.monotonic() < deadline and proc.poll() is None:
            busy = {int(p.name.split(TMP_MARK)[1].split("-")[0])
                    for p in tmp_path.glob(f".big-out{TMP_MARK}*")}
            orphans = [pid for pid in converters_of(victim) if pid in busy]
            if orphans:
                break
            time.sleep(0.02)
        assert orphans, "the worker to kill never converted while the batch ran"
        dask_cluster.kill(victim)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert json.loads(stdout)["summary"] == {"converted": 8, "skipped": 0, "failed": 0,
                                             "interrupted": False}
    assert files(out) == files(tmp_path / "big-ref")
    deadline = time.monotonic() + 30
    while any(map(alive, orphans)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, orphans)), "a converter outlived its worker"
    assert not leftovers(tmp_path)


def test_ctrl_c_on_the_client_stops_every_converter_and_a_rerun_finishes(tmp_path):
    need_dask()
    src = tmp_path / "in"
    big_store(src, 6)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "convert", "batch", str(src), "--to", "oci",
                             "--out", str(out), "--cluster", "local:2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not leftovers(tmp_path):
            time.sleep(0.01)
        assert leftovers(tmp_path), "no conversion started in 120 s"
        proc.send_signal(signal.SIGINT)  # while the first images are being written
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout and "Traceback" not in stderr
    done = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert len(done) < 6
    assert not leftovers(tmp_path), "partial output left"
    time.sleep(1)
    assert not leftovers(tmp_path), "a converter went on after the batch ended"
    proc = batch(src, "--to", "oci", "--out", out, "--json", "--cluster", "local:2")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["summary"]["skipped"] == len(done)
    assert data["summary"]["converted"] == 6 - len(done)
    assert batch(src, "--to", "oci", "--out", tmp_path / "ref", "-q").returncode == 0
    assert files(out) == files(tmp_path / "ref")


def test_cluster_progress_counts_bytes_as_converters_read_them(tmp_path):
    """Issue 19, point 11, on a cluster: byte counts travel as Dask events while a large image
    converts, not only when it is done."""
    need_dask()
    from test_batch import check_bytes_move_before_the_large_image_is_done

    check_bytes_move_before_the_large_image_is_done(tmp_path, "local:2")


def _listening_here() -> list[str]:
    """The local addresses (host:port) of the TCP sockets this process listens on."""
    mine = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in mine:  # 0A: LISTEN
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            addr = ".".join(str(b) for b in raw[::-1]) if width == 8 else raw.hex()
            found.append(f"{addr}:{int(port, 16)}")
    return found


def test_a_local_cluster_listens_on_loopback_only():
    """local:N's scheduler and workers are in this process; their HTTP servers (info pages,
    a retire-worker action) once listened on 0.0.0.0:8787, open to the network."""
    need_dask()
    import contextlib

    import distributed

    from convert.cluster import ClusterPool

    before = set(_listening_here())
    with contextlib.ExitStack() as stack:
        ClusterPool(cluster="local:2")._connect(distributed, stack)
        opened = [a for a in _listening_here() if a not in before]
        assert opened, "the check sees no socket: it would pass whatever was opened"
        assert all(a.startswith("127.0.0.1:") for a in opened), opened
