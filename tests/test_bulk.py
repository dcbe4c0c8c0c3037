"""``litecls bulk classify`` on real Ray: a simulated 3-node cluster and a plain local Ray.

The cluster is ``ray.cluster_utils.Cluster`` (a head and two worker nodes of one CPU each, all on
this machine); the command runs as a real subprocess, as a user runs it. Results are checked
against ``ImageClassifier.classify_many`` on the same files: real photos mixed with broken files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from photos import more_photos

from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

pytestmark = [pytest.mark.ray, pytest.mark.zoo]
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("ray")

#: Quantized scores come in 1/256 steps; a batched invoke may move one by a step (as in test_serve).
SCORE_TOL = 1 / 256 + 1e-6
#: The title Ray gives the pool's actor processes.
ACTOR_TITLE = b"ray::MapWorker(MapBatches(InferenceActor))"


@pytest.fixture(scope="module")
def model(zoo_model) -> Path:
    return zoo_model("efficientnet_lite0", "int8")


def _broken(folder: Path) -> list[Path]:
    """A truncated JPEG, a text file named .jpg and an empty .png: each must become an error row."""
    photo = labelled_imagenet_photos()[0][0].read_bytes()
    broken = [folder / "zz_truncated.jpg", folder / "zz_text.jpg", folder / "zz_empty.png"]
    broken[0].write_bytes(photo[: len(photo) // 3])
    broken[1].write_text("this is not an image\n")
    broken[2].write_bytes(b"")
    return broken


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 labelled ImageNet photos, 29 more real photos and 3 broken files, in one folder."""
    folder = tmp_path_factory.mktemp("bulk") / "photos"
    folder.mkdir()
    sources = [path for path, _ in labelled_imagenet_photos()] + more_photos()
    for i, path in enumerate(sources):
        shutil.copy(path, folder / f"{i:02d}_{path.name}")
    _broken(folder)
    return folder


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """199 files (the photos four times over, in sub-folders, and broken files): long enough to interrupt."""
    folder = tmp_path_factory.mktemp("bulk") / "many"
    sources = [path for path, _ in labelled_imagenet_photos()] + more_photos()
    for copy in range(4):
        (folder / f"set{copy}").mkdir(parents=True)
        for i, path in enumerate(sources):
            shutil.copy(path, folder / f"set{copy}" / f"{i:02d}_{path.name}")
    _broken(folder)
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and two worker nodes of one CPU each; yields the address to join."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster.address
    cluster.shutdown()


def bulk(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "litecls.cli.main", "bulk", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    _out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return err


def rows(output: Path) -> list[dict]:
    return pq.read_table(sorted(output.glob("part-*.parquet"))).to_pylist()


def expected(model: Path, folder: Path) -> dict[str, object]:
    paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=model, max_results=5)) as c:
        return dict(c.classify_many(paths))


def assert_same(got: list[dict], want: dict[str, object]) -> None:
    """One row per input, each equal to classify_many's result (or error) for that file."""
    paths = [row["path"] for row in got]
    assert len(paths) == len(set(paths)), "duplicate rows"
    assert sorted(paths) == sorted(want)
    for row in got:
        result = want[row["path"]]
        if isinstance(result, Exception):
            assert row["indices"] is None and row["error"] == str(result), row
            continue
        assert row["error"] is None, row
        categories = result.categories
        assert row["indices"] == [c.index for c in categories], row["path"]
        assert row["names"] == [c.category_name for c in categories]
        assert row["ambiguous"] == result.ambiguous
        for score, category in zip(row["scores"], categories, strict=True):
            assert abs(score - category.score) <= SCORE_TOL, (row["path"], score, category.score)
    assert row["size"] == os.path.getsize(row["path"])
    assert row["mtime_ns"] == os.stat(row["path"]).st_mtime_ns


def test_bulk_classify_on_a_three_node_cluster_equals_classify_many(cluster: str, photos: Path, model: Path,
                                                                    tmp_path: Path) -> None:
    err = finish(bulk("classify", str(photos), "--output", str(tmp_path / "out"), "--model", str(model),
                      "--address", cluster))
    assert "3 nodes, 3 CPUs" in err
    got = rows(tmp_path / "out")
    assert_same(got, expected(model, photos))
    assert sum(row["error"] is not None for row in got) == 3


def test_bulk_classify_on_local_ray_equals_classify_many_and_keeps_ray_quiet(photos: Path, model: Path,
                                                                            tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"  # a CSV with a path column, relative paths, a missing file
    names = sorted(p.name for p in photos.iterdir())
    listing.write_text("path,note\n" + "".join(f"photos/{n},x\n" for n in names) + "photos/missing.jpg,x\n")
    (tmp_path / "photos").symlink_to(photos)
    err = finish(bulk("classify", str(listing), "--output", str(tmp_path / "out"), "--model", str(model)))
    lines = err.strip().splitlines()
    assert "local Ray (1 node" in lines[0] and "of 53 files written" in lines[-1], err
    assert all(("files" in line or "bulk classify" in line) for line in lines), err  # nothing from Ray
    got = rows(tmp_path / "out")
    missing = [row for row in got if row["path"].endswith("missing.jpg")]
    assert len(missing) == 1 and missing[0]["error"].endswith("missing.jpg: no such file")
    want = expected(model, tmp_path / "photos")
    assert_same([row for row in got if row is not missing[0]],
                {str(tmp_path / "photos" / Path(k).name): v for k, v in want.items()})


def _wait_for(condition, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_interrupted_run_resumes_without_redoing_or_duplicating(cluster: str, many: Path, model: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("classify", str(many), "--output", str(out), "--model", str(model), "--address", cluster,
            "--part-rows", "4")
    first = bulk(*args)
    _wait_for(lambda: any(out.glob("part-*.parquet")), first)
    first.send_signal(signal.SIGKILL)  # no clean-up at all: the worst interruption
    first.wait()
    parts = {part.name: part.read_bytes() for part in out.glob("part-*.parquet")}
    before = rows(out)  # every complete part reads
    total = sum(1 for p in many.rglob("*") if p.is_file())
    assert 0 < len(before) < total
    err = finish(bulk(*args))
    assert f"{len(before)} done before, skipped" in err and f"{total - len(before)} of {total} files" in err
    for name, content in parts.items():  # the first run's parts are kept as they were
        assert (out / name).read_bytes() == content
    assert not list(out.glob(".*.tmp"))
    assert_same(rows(out), expected(model, many))


def _actor_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    if file.read().startswith(ACTOR_TITLE):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_a_worker_killed_mid_run_leaves_one_row_per_input(cluster: str, many: Path, model: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = bulk("classify", str(many), "--output", str(out), "--model", str(model), "--address", cluster,
               "--part-rows", "4")
    _wait_for(lambda: any(out.glob("part-*.parquet")) and _actor_pids(), run)
    victims = _actor_pids()
    os.kill(victims[0], signal.SIGKILL)
    written = len(rows(out))
    finish(run)
    assert written < sum(1 for p in many.rglob("*") if p.is_file()), "the run was over before the kill"
    assert victims[0] not in _actor_pids()
    assert_same(rows(out), expected(model, many))


def test_every_kind_of_source_lists_the_same_inputs(photos: Path, tmp_path: Path) -> None:
    from litecls.bulk.sources import list_inputs
    from litecls.errors import BulkError

    names = sorted(p.name for p in photos.iterdir())
    want = [str(photos / n) for n in names]
    (tmp_path / "list.txt").write_text("# photos\n\n" + "".join(f"{photos / n}\n" for n in names))
    pq.write_table(pa.table({"file": want}), tmp_path / "list.parquet")
    (tmp_path / "photos").symlink_to(photos)
    (tmp_path / "list.csv").write_text("label,path\n" + "".join(f"a,photos/{n}\n" for n in names))
    for source, column in ((str(photos), "path"), (f"file://{photos}", "path"), (f"{photos}/*.*", "path"),
                           (str(tmp_path / "list.txt"), "path"), (str(tmp_path / "list.parquet"), "file")):
        items = list_inputs(source, column)
        assert [i.path for i in items] == want, source
        assert all(i.size == os.path.getsize(i.path) and i.error is None for i in items)
    csv_items = list_inputs(str(tmp_path / "list.csv"))
    assert [i.path for i in csv_items] == [str(tmp_path / "photos" / n) for n in names]
    with pytest.raises(BulkError, match="no column 'path'"):
        list_inputs(str(tmp_path / "list.parquet"))
    with pytest.raises(BulkError, match="no such file or folder"):
        list_inputs(str(tmp_path / "nothing"))


def test_an_output_made_with_another_model_is_refused(tmp_path: Path) -> None:
    from litecls.bulk.writer import PartWriter
    from litecls.errors import BulkError

    schema = pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                        ("error", pa.string())])
    writer = PartWriter(tmp_path / "out", schema, {"task": "classify", "model_sha256": "a"}, part_rows=2)
    rows_in = pa.table({"path": ["x", "y", "x"], "size": [1, 2, 1], "mtime_ns": [5, 6, 5],
                        "error": ["e", "e", "e"]}, schema=schema)
    assert writer.add(rows_in).num_rows == 2  # the second x is the same input
    writer.close()
    assert [r["path"] for r in rows(tmp_path / "out")] == ["x", "y"]
    with pytest.raises(BulkError, match="model_sha256"):
        PartWriter(tmp_path / "out", schema, {"task": "classify", "model_sha256": "b"})


def test_ray_client_addresses_are_refused_with_a_way_that_works(photos: Path, model: Path,
                                                                tmp_path: Path) -> None:
    run = bulk("classify", str(photos), "--output", str(tmp_path / "out"), "--model", str(model),
               "--address", "ray://127.0.0.1:1")
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 2 and "ray job submit" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_bulk_embed_on_the_cluster_equals_embed_many(cluster: str, photos: Path, zoo_embedding,
                                                     tmp_path: Path) -> None:
    import numpy as np

    from litecls.tasks import ImageEmbedder, ImageEmbedderOptions

    model = zoo_embedding("efficientnet_lite0", "int8")
    finish(bulk("embed", str(photos), "--output", str(tmp_path / "out"), "--model", str(model),
                "--address", cluster))
    table = pq.read_table(sorted((tmp_path / "out").glob("part-*.parquet")))
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 1280)
    got = table.to_pylist()
    paths = sorted(str(p) for p in photos.iterdir())
    with ImageEmbedder.create_from_options(ImageEmbedderOptions(model_path=model)) as embedder:
        want = dict(embedder.embed_many(paths))
    assert sorted(row["path"] for row in got) == paths
    for row in got:
        vector = want[row["path"]]
        if isinstance(vector, Exception):
            assert row["embedding"] is None and row["error"] == str(vector), row
            continue
        assert row["error"] is None
        np.testing.assert_allclose(np.array(row["embedding"], np.float32), vector, rtol=1e-5, atol=1e-5)
    assert sum(row["error"] is not None for row in got) == 3
