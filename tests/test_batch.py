"""acioci batch: a mixed batch with corrupt inputs and an in-batch dependency, the report,
resume, and a clean stop on SIGINT."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


import build as fx
from helpers import ROOT, acioci
from make_validation_cases import Layout, _tar_dir

E = fx.entry


def make_batch(d: Path) -> dict[str, str]:
    """12 ACIs (one depending on another), 10 oci-archives, 2 corrupt inputs."""
    d.mkdir()
    kinds = {}
    fx.write_aci(d / "base.aci", fx.manifest("example.com/base", version="1"),
                 [E("etc", "dir"), E("etc/os", data=b"base")])
    fx.write_aci(d / "app.aci", fx.manifest("example.com/app", version="1", dependencies=[
        {"imageName": "example.com/base"}]), [E("app", data=b"app")])
    kinds.update({"base.aci": "aci", "app.aci": "aci"})
    for i in range(10):
        fx.write_aci(d / "acis" / f"a{i}.aci", fx.manifest(f"example.com/a{i}", version="1"),
                     [E(f"f{i}", data=os.urandom(2000))], compression=("gzip", "xz")[i % 2])
        kinds[f"acis/a{i}.aci"] = "aci"
    (d / "ocis").mkdir()
    for i in range(10):
        lay = Layout(d / f"tmp{i}")
        lay.image(layers=[fx.layer_tar([E(f"o{i}", data=os.urandom(3000))])], ref=f"v{i}")
        _tar_dir(lay.root, d / "ocis" / f"o{i}.tar")
        shutil.rmtree(lay.root)
        kinds[f"ocis/o{i}.tar"] = "oci"
    (d / "broken.aci").write_bytes(gzip.compress(b"not a tar at all" * 100))
    raw = (d / "ocis" / "o0.tar").read_bytes()
    (d / "ocis" / "truncated.tar").write_bytes(raw[: len(raw) // 2])
    return kinds


def test_batch_to_oci_and_aci_with_report_and_resume(tmp_path):
    src = tmp_path / "in"
    kinds = make_batch(src)
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    proc = acioci("batch", src, "--to", "aci", "--out", out, "--report", report, "--jobs", "2")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(report.read_text())
    recs = {Path(r["source"]).relative_to(src).as_posix(): r for r in data["records"]}
    assert len(recs) == 24
    assert data["summary"] == {"converted": 22, "skipped": 0, "failed": 2, "interrupted": False}
    assert recs["broken.aci"]["status"] == "failed" and "broken.aci" in recs["broken.aci"]["error"]
    assert recs["ocis/truncated.tar"]["status"] == "failed"
    for rel in kinds:
        r = recs[rel]
        assert r["status"] == "converted", r
        assert r["destination"] == str(out / (rel.rsplit(".", 1)[0] + ".aci"))
        assert r["result"]["imageID"].startswith("sha512-") and r["bytes"] > 0
        assert Path(r["destination"]).is_file()
    # the app was rendered with its in-batch dependency
    acioci("validate", out / "app.aci", check=0)
    import tarfile
    import io

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress((out / "app.aci").read_bytes()))) as tf:
        assert {"rootfs/etc/os", "rootfs/app"} <= set(tf.getnames())
    # resume: everything that converted is skipped, the corrupt ones fail again
    proc = acioci("batch", src, "--to", "aci", "--out", out, "--json")
    again = json.loads(proc.stdout)
    assert again["summary"] == {"converted": 0, "skipped": 22, "failed": 2,
                                "interrupted": False}
    assert proc.returncode == 1
    assert not [p for p in out.rglob(".*acioci-tmp*")]


def test_batch_to_oci_layouts(tmp_path):
    src = tmp_path / "in"
    make_batch(src)
    (src / "broken.aci").unlink()
    (src / "ocis" / "truncated.tar").unlink()
    out = tmp_path / "out"
    proc = acioci("batch", src / "*.aci", src / "acis", "--to", "oci", "--out", out, "-q")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    assert (out / "app" / "index.json").exists() and (out / "a3" / "oci-layout").exists()
    acioci("validate", out / "app", out / "a3", check=0)


def test_colliding_outputs_are_refused_before_work(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    fx.write_aci(src / "x.aci", fx.manifest("example.com/x"), [])
    (src / "x.tar").write_bytes(b"")
    out = tmp_path / "out"
    proc = acioci("batch", src, "--to", "oci", "--out", out)
    assert proc.returncode == 2 and "would both be written to" in proc.stderr
    assert not any(out.iterdir())


def test_sigint_stops_cleanly_and_a_rerun_finishes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):  # big enough that converting one takes a while
        fx.write_aci(src / f"big{i}.aci", fx.manifest(f"example.com/big{i}"),
                     [E(f"blob{j}", data=os.urandom(4 << 20)) for j in range(6)],
                     compression="none")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "convert", "batch", str(src), "--to", "oci",
                             "--out", str(out), "--jobs", "1", "--compression", "gzip"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith("big") for p in out.glob("*")):
        time.sleep(0.05)
    time.sleep(0.3)  # well into the next image
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout and "Traceback" not in stderr
    done = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert 1 <= len(done) < 6
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "partial output left"
    for name in done:
        assert acioci("validate", out / name, "--fast").returncode == 0
    proc = acioci("batch", src, "--to", "oci", "--out", out, "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert data["summary"]["skipped"] == len(done)
    assert data["summary"]["converted"] == 6 - len(done)


# Runs one batch in a process of its own (batch.run installs signal handlers and forks) and
# prints its timeline: ["bytes", n] as on_bytes is called, ["done", source, bytes] per record.
TIMELINE = """
import json, sys
from convert import api, batch
from convert.cluster import ClusterPool
events = []
src, out, how = sys.argv[1:4]
executor = ClusterPool(how) if how.startswith("local:") else None
batch.run([src], out, to="oci", options=api.ConvertOptions(), jobs=2, executor=executor,
          on_bytes=lambda n: events.append(["bytes", n]),
          on_done=lambda r, i, total: events.append(["done", r.source, r.bytes]))
print(json.dumps(events))
"""


def two_inputs_one_large(src: Path) -> tuple[int, int]:
    """A tiny ACI and one of 64 MiB of random bytes (seconds to convert): sizes (small, large)."""
    src.mkdir()
    fx.write_aci(src / "a-small.aci", fx.manifest("example.com/small"), [E("f", data=b"x")])
    fx.write_aci(src / "b-large.aci", fx.manifest("example.com/large"),
                 [E(f"blob{i}", data=os.urandom(8 << 20)) for i in range(8)],
                 compression="none")
    return (src / "a-small.aci").stat().st_size, (src / "b-large.aci").stat().st_size


def check_bytes_move_before_the_large_image_is_done(tmp_path: Path, how: str) -> None:
    small, large = two_inputs_one_large(tmp_path / "in")
    proc = subprocess.run([sys.executable, "-c", TIMELINE, str(tmp_path / "in"),
                           str(tmp_path / "out"), how], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    events = json.loads(proc.stdout)
    assert sum(e[1] for e in events if e[0] == "bytes") == small + large  # ends at the total
    end = next(i for i, e in enumerate(events)
               if e[0] == "done" and e[1].endswith("b-large.aci"))
    # what came before the large image's record, without the top-up that comes with it
    before = events[:end - 1] if events[end - 1][0] == "bytes" else events[:end]
    moves = [e[1] for e in before if e[0] == "bytes"]
    finished = sum(e[2] for e in before if e[0] == "done")
    # bytes of running jobs (the large one; perhaps the small one) counted before the large
    # one finished: more than the small one can account for (a cluster sends a count at
    # most every 0.5 s, and the large image takes about a second here)
    assert sum(moves) - finished > small, events


def test_the_progress_bar_counts_bytes_as_workers_read_them(tmp_path):
    """Issue 19, point 11: the bar moved only when a whole image finished."""
    check_bytes_move_before_the_large_image_is_done(tmp_path, "jobs")


def test_a_killed_worker_fails_its_input_alone_and_a_rerun_cleans_up(tmp_path):
    """A worker killed outright (SIGKILL: the OOM killer, say) fails the input it was
    converting; a new worker converts the rest (the old pool broke as a whole). Its
    temporary cannot be cleaned by it: the next batch removes it, provably stale."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        fx.write_aci(src / f"big{i}.aci", fx.manifest(f"example.com/big{i}"),
                     [E(f"blob{j}", data=os.urandom(4 << 20)) for j in range(6)],
                     compression="none")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "convert", "batch", str(src), "--to", "oci",
                             "--out", str(out), "--jobs", "1", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, temps = time.monotonic() + 60, []
    while time.monotonic() < deadline and not temps:
        temps = [p for p in out.glob(".big0.acioci-tmp-*")]
        time.sleep(0.01)
    assert temps, "the first conversion never started"
    os.kill(int(temps[0].name.split("acioci-tmp-")[1].split("-")[0]), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    recs = {Path(r["source"]).name: r for r in json.loads(stdout)["records"]}
    assert recs["big0.aci"]["status"] == "failed"
    assert "worker failed: killed by signal 9" in recs["big0.aci"]["error"]
    assert recs["big1.aci"]["status"] == recs["big2.aci"]["status"] == "converted"
    assert [p.name for p in out.glob(".*acioci-tmp-*")] != []  # SIGKILL leaves it
    again = acioci("batch", src, "--to", "oci", "--out", out, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["summary"]["converted"] == 1
    assert [p.name for p in out.glob(".*acioci-tmp-*")] == []
