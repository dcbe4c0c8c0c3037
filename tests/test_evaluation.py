"""``litecls evaluate``, ``models report`` and ``models choose`` on real zoo models and photos (issue #5)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from litecls.cli.main import main
from litecls.errors import DatasetError, LabelsError
from litecls.evaluation.accuracy import evaluate
from litecls.evaluation.choice import choose
from litecls.evaluation.dataset import (
    LabelMatcher,
    load_csv,
    load_folder,
    load_labelled,
    sample_set,
    write_csv,
)
from litecls.evaluation.report import ReportRow, ZooReport, load_report, pareto_flags
from litecls.models import list_models
from litecls.models.labels import imagenet_display_names, imagenet_labels, label_synonyms
from litecls.models.zoo import DEFAULT_MODEL
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

ZooModel = Callable[[str, str], Path]
TWO_MODELS = ",".join([list_models()[0], list_models()[-1]])  # the first and last in the registry


@pytest.fixture(scope="module")
def int8_model(zoo_model: ZooModel) -> Path:
    return zoo_model(DEFAULT_MODEL, "int8")


@pytest.fixture(scope="module")
def hand_count(int8_model: Path) -> dict[int, int]:
    """Correct answers at k = 1..5 counted from plain ``classify`` calls, one photo at a time."""
    correct = dict.fromkeys(range(1, 6), 0)
    options = ImageClassifierOptions(model_path=int8_model, max_results=5)
    with ImageClassifier.create_from_options(options) as classifier:
        for path, label in labelled_imagenet_photos():
            indices = [c.index for c in classifier.classify(path).categories]
            for k in correct:
                correct[k] += label in indices[:k]
    return correct


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def labelled_folder(root: Path, rename: dict[str, str] | None = None) -> Path:
    """The 20 sample photos copied into ``root/<model label>/``; ``rename`` changes folder names."""
    labels = imagenet_labels()
    for path, index in labelled_imagenet_photos():
        name = (rename or {}).get(labels[index], labels[index])
        (root / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / name / path.name)
    return root


# -- accuracy ----------------------------------------------------------------------------------------


@pytest.mark.zoo
def test_samples_accuracy_equals_counting_classify_results(capsys, int8_model, hand_count):
    code, out, _err = run_cli(capsys, "evaluate", int8_model, "--samples", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["evaluated"] == 20 and data["left_out"] == 0
    assert {int(k): v for k, v in data["correct"].items()} == hand_count
    assert data["top_k"]["1"] == pytest.approx(hand_count[1] / 20)
    assert data["top_k"]["5"] == pytest.approx(hand_count[5] / 20)
    # Per-class counts add up to the totals, and confusions are exactly the top-1 misses.
    assert sum(c["top1"] for c in data["per_class"]) == hand_count[1]
    assert sum(c["images"] for c in data["per_class"]) == 20
    assert sum(c["count"] for c in data["confusions"]) == 20 - hand_count[1]


@pytest.mark.core
@pytest.mark.zoo
def test_folder_and_csv_give_the_same_accuracy_as_the_samples(tmp_path, int8_model, hand_count):
    folder = labelled_folder(tmp_path / "photos")
    options = ImageClassifierOptions(model_path=int8_model, max_results=5)
    with ImageClassifier.create_from_options(options) as classifier:
        from_folder = evaluate(classifier, load_folder(folder))
        csv_file = write_csv(sample_set(), tmp_path / "samples.csv", classifier.labels)
        from_csv = evaluate(classifier, load_labelled(csv_file))
    for result in (from_folder, from_csv):
        assert result.evaluated == 20 and result.left_out == 0
        assert [result.correct(k) for k in range(1, 6)] == [hand_count[k] for k in range(1, 6)]


@pytest.mark.zoo
def test_human_text_output_and_confusion_png(capsys, tmp_path, int8_model, hand_count):
    png = tmp_path / "confusion.png"
    code, out, _err = run_cli(capsys, "evaluate", int8_model, "--samples", "--confusion", png)
    assert code == 0
    assert f"{100 * hand_count[1] / 20:.1f}%" in out and "per class" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.core
@pytest.mark.zoo
def test_label_name_mismatch_is_reported_not_dropped(capsys, tmp_path, int8_model):
    labels = imagenet_labels()
    photos = labelled_imagenet_photos()
    eagle = labels[22]  # "bald eagle": a folder spelled differently still matches
    assert any(index == 22 for _, index in photos)
    jeep_count = sum(labels[i] == "jeep" for _, i in photos)
    folder = labelled_folder(tmp_path / "photos", {"jeep": "jeeep", eagle: "Bald_Eagle"})
    code, out, _err = run_cli(capsys, "evaluate", int8_model, folder, "--json")
    assert code == 1  # images were left out
    data = json.loads(out)
    assert data["unknown_labels"] == {"jeeep": jeep_count}
    assert "jeep" in data["suggestions"]["jeeep"]
    assert data["evaluated"] == 20 - jeep_count and data["left_out"] == jeep_count
    assert any(c["label"] == eagle for c in data["per_class"])
    code, out, _err = run_cli(capsys, "evaluate", int8_model, folder)
    assert code == 1 and f"'jeeep': {jeep_count} image(s)" in out and "did you mean 'jeep'" in out


@pytest.mark.zoo
def test_display_name_synonyms_and_case_match_labels():
    labels = list(imagenet_labels())
    matcher = LabelMatcher(labels, label_synonyms(labels, list(imagenet_display_names())))
    assert matcher.index("goldfish") == 1
    assert matcher.index("Carassius auratus") == 1  # a WordNet synonym
    assert matcher.index("GREAT_WHITE-shark") == 2
    assert matcher.index("no such thing") is None
    assert matcher.index(999) == 999 and matcher.index(1000) is None


# -- bad data ----------------------------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.zoo
def test_empty_and_unlabelled_folders_are_clear_errors(capsys, tmp_path, int8_model):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        load_folder(empty)
    code, _out, err = run_cli(capsys, "evaluate", int8_model, empty)
    assert code == 2 and "no images found" in err

    loose = tmp_path / "loose"
    loose.mkdir()
    for path, _ in labelled_imagenet_photos()[:3]:
        shutil.copy(path, loose / path.name)
    code, _out, err = run_cli(capsys, "evaluate", int8_model, loose)
    assert code == 2 and "no label folders" in err

    code, _out, err = run_cli(capsys, "evaluate", int8_model, tmp_path / "missing")
    assert code == 2 and "no such folder or file" in err


@pytest.mark.core
@pytest.mark.zoo
def test_no_known_label_is_a_labels_error(tmp_path, int8_model):
    folder = tmp_path / "photos"
    (folder / "cat_pictures").mkdir(parents=True)
    shutil.copy(labelled_imagenet_photos()[0][0], folder / "cat_pictures" / "a.jpg")
    with ImageClassifier.create_from_options(ImageClassifierOptions(model_path=int8_model)) as classifier, \
            pytest.raises(LabelsError, match="none of the 1 label name"):
        evaluate(classifier, load_folder(folder))


@pytest.mark.core
@pytest.mark.zoo
def test_unreadable_images_are_reported(capsys, tmp_path, int8_model):
    folder = labelled_folder(tmp_path / "photos")
    (folder / "jeep" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    code, out, _err = run_cli(capsys, "evaluate", int8_model, folder, "--json")
    data = json.loads(out)
    assert code == 1 and data["evaluated"] == 20
    assert len(data["unreadable"]) == 1 and "broken.jpg" in data["unreadable"][0]["file"]


@pytest.mark.core
def test_csv_lines_are_checked(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nphoto.jpg\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2: expected 'path,label'"):
        load_csv(bad)
    ok = tmp_path / "ok.csv"
    ok.write_text('# comment\nimg/a.jpg,"goldfish, Carassius auratus"\n\n', encoding="utf-8")
    assert load_csv(ok).items == [(tmp_path / "img" / "a.jpg", "goldfish, Carassius auratus")]


@pytest.mark.core
def test_model_errors_are_clear(capsys, tmp_path):
    text = tmp_path / "model.tflite"
    text.write_text("this is not a model, just some text", encoding="utf-8")
    code, _out, err = run_cli(capsys, "evaluate", text, "--samples")
    assert code == 2 and "not a TFLite model" in err
    code, _out, err = run_cli(capsys, "evaluate", text, "--samples", "--threads", "0")
    assert code == 2 and "--threads must be a positive integer" in err


# -- report and choose ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, zoo_cache: Path, zoo_model: ZooModel) -> Path:
    for name in TWO_MODELS.split(","):
        for precision in ("float32", "int8"):
            zoo_model(name, precision)
    out = tmp_path_factory.mktemp("report")
    code = main(["models", "report", "--models", TWO_MODELS, "-p", "float32,int8", "--runs", "3",
                 "--warmup", "1", "--cache-dir", str(zoo_cache), "--json", str(out / "report.json"),
                 "--markdown", str(out / "report.md"), "--csv", str(out / "report.csv"),
                 "--plot", str(out / "report.png")])
    assert code == 0
    return out / "report.json"


@pytest.mark.zoo
def test_report_rows_match_evaluate(report_file: Path, zoo_model: ZooModel, hand_count):
    report = load_report(report_file)
    assert [r.name for r in report.rows] == [f"{name}:{precision}" for name in TWO_MODELS.split(",")
                                             for precision in ("float32", "int8")]
    int8_row = report.rows[1]
    assert int8_row.top1 == pytest.approx(hand_count[1] / 20)
    assert int8_row.top5 == pytest.approx(hand_count[5] / 20)
    for row in report.rows:
        assert row.images == 20 and set(row.latency_ms) == set(report.threads) and report.threads[0] == 1
        assert all(ms > 0 for ms in row.latency_ms.values())
        assert row.size_mb == pytest.approx(Path(row.path).stat().st_size / 1e6)
        assert (row.agreement is None) == (row.precision == "float32")
    # The rule itself is checked on a hand-made report (test_pareto_front_of_a_known_report);
    # here: the fastest file is always on the front.
    fastest = min(report.rows, key=lambda r: r.latency_ms[report.threads[-1]])
    assert fastest.pareto
    folder = report_file.parent
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert markdown.count("\n") == 2 + len(report.rows)
    assert f"| {report.rows[-1].model} | {report.rows[-1].precision} |" in markdown
    assert (folder / "report.csv").read_text(encoding="utf-8").count("\n") == 1 + len(report.rows)
    assert (folder / "report.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.zoo
def test_choose_on_a_measured_report(capsys, report_file: Path):
    report = load_report(report_file)
    slowest = max(max(r.latency_ms.values()) for r in report.rows)
    choice = choose(report, budget_ms=slowest + 1)
    # Everything fits: the choice has the highest published top-1 (the rule: the hand-made tests),
    # and says which figure it ranked by.
    assert report.rank_by == "published"
    assert choice.row is not None
    assert choice.row.published_top1 == max(r.published_top1 for r in report.rows)
    code, out, _err = run_cli(capsys, "models", "choose", "--budget-ms", slowest + 1, "--report", report_file)
    assert code == 0 and out.startswith(f"choose {choice.row.name}")
    assert f"the most accurate of the {len(report.rows)}" in out
    assert f"published ImageNet top-1 {100 * choice.row.published_top1:.1f}%" in out

    # A size limit below every float32 file leaves the int8 files only.
    limit = min(r.size_mb for r in report.rows if r.precision == "float32") - 0.1
    choice = choose(report, budget_ms=slowest + 1, max_size_mb=limit)
    assert choice.row is not None and choice.row.precision == "int8"
    assert any("too big" in reason for reason in choice.reasons)

    fastest = min(r.latency_ms[1] for r in report.rows)
    code, out, _err = run_cli(capsys, "models", "choose", "--budget-ms", fastest / 2, "--threads", 1,
                              "--report", report_file)
    assert code == 1 and "no model meets" in out and out.count("too slow") == len(report.rows)


# A hand-made report with known answers: (name, ms at 2 threads, top-1, top-5, MB).
KNOWN_ROWS = [
    ("fast", 10.0, 0.80, 0.95, 5.0),
    ("fast-twin", 10.0, 0.80, 0.95, 4.5),  # the same figures, a smaller file
    ("beaten", 15.0, 0.80, 0.90, 4.0),  # slower than "fast", no more accurate
    ("accurate", 20.0, 0.90, 0.95, 10.0),
    ("best-top5", 30.0, 0.90, 1.00, 20.0),  # as accurate as "accurate" at top-1, better top-5
    ("slow-and-worse", 40.0, 0.85, 0.95, 3.0),  # beaten by "accurate" on every axis
]


def known_report() -> ZooReport:
    """Ranked by the measured figures, as with the user's own data (``--data``)."""
    rows = [ReportRow(model=name, precision="int8", path=f"/nowhere/{name}.tflite", size_mb=mb,
                      latency_ms={1: 2 * ms, 2: ms}, top1=top1, top5=top5, images=20, agreement=None)
            for name, ms, top1, top5, mb in KNOWN_ROWS]
    return ZooReport(rows=rows, threads=[1, 2], data="hand-made", runs=1, warmup=0, machine={},
                     rank_by="data")


@pytest.mark.core
def test_pareto_front_of_a_known_report():
    report = known_report()
    pareto_flags(report.rows, 2, report.rank_by)
    assert [r.model for r in report.rows if r.pareto] == ["fast", "fast-twin", "accurate", "best-top5"]


@pytest.mark.core
@pytest.mark.parametrize(("budget_ms", "max_mb", "expected"), [
    (35, None, "best-top5"),  # top-1 tie with "accurate": the better top-5 wins
    (25, None, "accurate"),  # "best-top5" is too slow
    (25, 8, "fast-twin"),  # "accurate" is too big; "fast" and its twin tie: the smaller file wins
    (12, None, "fast-twin"),
    (17, 4.2, "beaten"),  # the only file that fits both limits
])
def test_choose_from_a_known_report(budget_ms: float, max_mb: float | None, expected: str):
    choice = choose(known_report(), budget_ms=budget_ms, max_size_mb=max_mb, threads=2)
    assert choice.row is not None and choice.row.model == expected, choice.reasons


@pytest.mark.core
def test_choose_reports_why_nothing_fits():
    choice = choose(known_report(), budget_ms=5, threads=2)
    assert choice.row is None
    assert choice.reasons[0] == "no model meets 5 ms at 2 thread(s); the fastest is fast:int8 at 10.0 ms"
    assert sum("too slow" in reason for reason in choice.reasons) == len(KNOWN_ROWS)
    with pytest.raises(ValueError, match="not 4"):
        choose(known_report(), budget_ms=50, threads=4)


# A hand-made report ranked by published figures, shaped like the case issue #16 reported: on 20
# photos "mobile:float16" got one more right than "lite2", whose published top-1 is 5.7 points higher.
# (name, precision, ms at 2 threads, measured top-1, published top-1 %, published for, agreement, MB)
PUBLISHED_ROWS = [
    ("mobile", "float16", 12.0, 0.95, 71.9, "float", 1.0, 7.0),
    ("lite2", "float32", 30.0, 0.90, 77.6, "float", None, 24.0),
    ("lite2", "float16", 30.0, 0.90, 77.6, "float", 1.0, 12.0),  # as accurate, smaller: wins ties
    ("lite2", "dynamic", 28.0, 0.85, 77.6, "float", 0.95, 6.5),  # same figure, agrees less
    ("lite2", "int8", 20.0, 0.90, 77.0, "int8", 1.0, 6.0),  # its own, lower published figure
    ("lite1", "float32", 25.0, 0.95, 76.7, "float", None, 20.0),  # slower and less accurate than lite2:int8
    ("mystery", "int8", 5.0, 1.00, None, None, 1.0, 1.0),  # nothing published: ranks last
]


def published_report() -> ZooReport:
    rows = [ReportRow(model=name, precision=precision, path=f"/nowhere/{name}-{precision}.tflite",
                      size_mb=mb, latency_ms={1: 2 * ms, 2: ms}, top1=top1, top5=top1, images=20,
                      agreement=agreement, published_top1=None if pub is None else pub / 100,
                      published_for=kind, published_source=None if pub is None else "https://example.org")
            for name, precision, ms, top1, pub, kind, agreement, mb in PUBLISHED_ROWS]
    return ZooReport(rows=rows, threads=[1, 2], data="20 sample photos", runs=1, warmup=0, machine={})


@pytest.mark.core
@pytest.mark.parametrize(("budget_ms", "expected"), [
    (33, "lite2:float16"),  # float32 and float16 tie on everything but size
    (29, "lite2:dynamic"),  # the float figure applies to dynamic-range files
    (25, "lite2:int8"),  # 77.0 published for the int8 file still beats 71.9
    (15, "mobile:float16"),  # one more photo right does not matter; fitting does
    (8, "mystery:int8"),  # the only file that fits, though nothing is published for it
])
def test_choose_ranks_by_published_accuracy(budget_ms: float, expected: str):
    choice = choose(published_report(), budget_ms=budget_ms, threads=2)
    assert choice.row is not None and choice.row.name == expected, choice.reasons
    if choice.row.published_top1 is not None:
        assert f"published ImageNet top-1 {100 * choice.row.published_top1:.1f}%" in choice.reasons[0]
    assert "ranked by published ImageNet top-1" in choice.reasons[1]


@pytest.mark.core
def test_published_pareto_front_and_data_ranking_differ():
    report = published_report()
    pareto_flags(report.rows, 2, "published")
    assert [r.name for r in report.rows if not r.pareto] == ["lite1:float32"]
    # The same rows ranked by the 20 photos: the choice #16 complained about.
    pareto_flags(report.rows, 2, "data")
    assert [r.name for r in report.rows if r.pareto] == ["mystery:int8"]
    report.rank_by = "data"
    assert choose(report, budget_ms=33, threads=2).row.name == "mystery:int8"
    with pytest.raises(ValueError, match="unknown ranking"):
        report.rows[0].accuracy_key("photos")


@pytest.mark.core
def test_registry_published_figures_have_sources():
    from litecls.models import get_config, list_models

    for name in list_models():
        config = get_config(name)
        assert config.published is not None and config.published.source.startswith("https://")
        assert 60 < config.published.top1 < 90
        for precision in ("float32", "float16", "dynamic"):
            assert config.published_accuracy(precision) == (config.published, "float")
        figure, kind = config.published_accuracy("int8")
        assert (kind == "int8") == (config.published_int8 is not None)
        assert figure.top1 <= config.published.top1


@pytest.mark.core
def test_the_shared_metrics_on_a_hand_made_case():
    from litecls.evaluation.metrics import confusion_matrix, log_loss, precision_recall_f1, top_k_accuracy

    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25]])
    labels = np.array([0, 1, 1, 2])
    assert top_k_accuracy(scores, labels, 1) == 0.5 and top_k_accuracy(scores, labels, 2) == 0.75
    confusion = confusion_matrix(labels, scores.argmax(axis=1), 3)
    assert confusion.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    precision, recall, f1, support = precision_recall_f1(confusion)
    assert precision.tolist() == [0.5, 1.0, 0.0] and recall.tolist() == [1.0, 0.5, 0.0]
    assert f1 == pytest.approx([2 / 3, 2 / 3, 0.0]) and support.tolist() == [1, 2, 1]
    assert log_loss(scores, labels) == pytest.approx(-np.log([0.7, 0.3, 0.5, 0.25]).mean())
    assert log_loss(scores[:0], labels[:0]) is None
