"""The lesson's downloadable notebooks run top to bottom, done and not done.

The docs build writes two notebooks next to the lesson page:
``lessons/09-segment-with-ml.ipynb`` (the learner's: exercise skeletons, no
solutions; the "Download the notebook" link) and
``lessons/09-segment-with-ml-solutions.ipynb`` (the instructor's: reference
solutions in place of the skeletons).  These tests execute the learner's
notebook in a fresh Jupyter kernel, as a learner would, with the same sample
data, twice:

* **unfilled**, as downloaded: every checker must say "not done yet" (and
  none may pass), and no later cell may fail;
* **filled** with the reference solutions (each skeleton cell replaced by the
  instructor notebook's solution of the same exercise): every check passes.

Without a built site they are skipped, unless ``PIXELFOREST_REQUIRE_BROWSER=1``
(set by ``.ci/run``) turns that into a failure; the two that execute the
notebook also need the sample data it loads (``sample_data``: skipped with
one line when offline without ``PIXELFOREST_DATA_DIR``, an error with it).
"""

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "docs" / "_build" / "html" / "lessons"
LEARNER = LESSONS / "09-segment-with-ml.ipynb"
INSTRUCTOR = LESSONS / "09-segment-with-ml-solutions.ipynb"
REQUIRED = os.environ.get("PIXELFOREST_REQUIRE_BROWSER") == "1"
EXERCISES = ["ex-normalize", "ex-kmeans", "ex-iou", "ex-features", "ex-improvement",
             "ex-count"]


def _unavailable(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (PIXELFOREST_REQUIRE_BROWSER=1 makes this an error)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def notebooks():
    for path in (LEARNER, INSTRUCTOR):
        if not path.is_file():
            _unavailable(f"{path} is missing; build the site first "
                         "(sphinx-build -W --keep-going -b html docs docs/_build/html)")
    try:
        import nbformat
        import nbclient  # noqa: F401
    except ImportError:
        _unavailable("nbclient is not installed: pip install -e '.[docs]'")
    learner = nbformat.read(LEARNER, as_version=4)
    instructor = nbformat.read(INSTRUCTOR, as_version=4)
    nbformat.validate(learner)
    nbformat.validate(instructor)
    return learner, instructor


def _exercise_cells(notebook):
    return {cell.metadata["pixelforest"]["exercise"]: cell for cell in notebook.cells
            if cell.cell_type == "code" and "pixelforest" in cell.metadata}


def _run(notebook, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    data_dir = os.environ.get("PIXELFOREST_DATA_DIR")
    if data_dir:  # the kernel runs in tmp_path: a relative path must become absolute
        monkeypatch.setenv("PIXELFOREST_DATA_DIR", str((ROOT / data_dir).resolve()
                                                       if not Path(data_dir).is_absolute()
                                                       else Path(data_dir)))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "some cells did not run"
    return code


def _text(cells):
    return "".join(output.get("text", "") for cell in cells for output in cell.outputs)


def test_the_two_notebooks_differ_only_in_the_exercises(notebooks):
    learner, instructor = notebooks
    skeletons, solutions = _exercise_cells(learner), _exercise_cells(instructor)
    assert list(skeletons) == EXERCISES and list(solutions) == EXERCISES
    for label in EXERCISES:
        skeleton, solution = skeletons[label], solutions[label]
        assert skeleton.metadata["pixelforest"]["role"] == "skeleton"
        assert solution.metadata["pixelforest"]["role"] == "solution"
        assert "# your code here" in skeleton.source, label
        assert "# your code here" not in solution.source, label
        assert "lesson.check_" in skeleton.source, f"{label}: the checker call is missing"
        assert len(skeleton.source.splitlines()) < len(solution.source.splitlines()) + 6
    learner_text = "".join(cell.source for cell in learner.cells)
    assert "Reference solution" not in learner_text, "solution text in the learner's notebook"
    # every other code cell is the same in both, so neither depends on a solution's names
    shared_code = [c.source for c in learner.cells
                   if c.cell_type == "code" and "pixelforest" not in c.metadata]
    assert shared_code == [c.source for c in instructor.cells
                           if c.cell_type == "code" and "pixelforest" not in c.metadata]


def test_unfilled_notebook_says_not_done_and_runs_to_the_end(notebooks, sample_data, tmp_path,
                                                             monkeypatch):
    import copy

    learner, _ = notebooks
    code = _run(copy.deepcopy(learner), tmp_path, monkeypatch)
    text = _text(code)
    assert text.count("is not done yet") == len(EXERCISES), text
    assert "\N{CHECK MARK} Exercise" not in text
    assert _text([code[-1]]), "the last cell printed nothing"


def test_filled_notebook_passes_every_check(notebooks, sample_data, tmp_path,
                                            monkeypatch):
    import copy

    learner, instructor = copy.deepcopy(notebooks[0]), notebooks[1]
    solutions = _exercise_cells(instructor)
    for label, cell in _exercise_cells(learner).items():
        cell.source = solutions[label].source
    code = _run(learner, tmp_path, monkeypatch)
    text = _text(code)
    assert text.count("\N{CHECK MARK} Exercise") == len(EXERCISES), text
    assert "is not done yet" not in text
    images = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    assert images >= 10, f"expected the lesson's figures, got {images}"
