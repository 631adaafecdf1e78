"""EvaluationView: the confusion matrix as sklearn computes it, and clickable misclassified samples."""
import numpy as np
import pytest
from PySide6.QtCore import Qt
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from widgets.views.evaluation import EvaluationView

K = 4
NAMES = ["cat", "dog", "frog", "ship"]


def _labels(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, K, n))
    return y, pred


@pytest.fixture
def view(qtbot):
    v = EvaluationView()
    qtbot.addWidget(v)
    v.resize(760, 760)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_matrix_counts_and_accuracy_match_sklearn(view, qtbot):
    y, pred = _labels()
    m = confusion_matrix(y, pred, labels=range(K))
    per_class = recall_score(y, pred, average=None, labels=range(K))
    view.set_confusion(m, per_class, accuracy_score(y, pred), NAMES)
    np.testing.assert_array_equal(view.displayed_confusion(), m)
    view.grab()  # paint
    for t in range(K):
        for q in range(K):
            assert view.cell_text(t, q) == (str(m[t, q]) if m[t, q] else "")
    painted = view.matrix_widget.painted_accuracy
    assert painted == {t: f"{100 * per_class[t]:.0f}%" for t in range(K)}
    assert f"{100 * accuracy_score(y, pred):.1f}%" in view.accuracy_label.text()
    assert f"{int(np.trace(m))} of {len(y)}" in view.accuracy_label.text()


def test_rows_are_true_classes_columns_predicted(view):
    m = np.array([[5, 0, 0, 0], [3, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]])
    view.set_confusion(m, None, None, NAMES)
    view.grab()
    # 3 dogs predicted as cat: row "dog" (1), column "cat" (0)
    assert view.cell_text(1, 0) == "3" and view.cell_text(0, 1) == ""
    r = view.matrix_widget.cell_rect(1, 0)
    assert view.matrix_widget.cell_at(r.center()) == (1, 0)
    # accuracy derived when not given; a class without samples says n/a rather than 0%
    assert view.matrix_widget.painted_accuracy[1] == "25%"
    assert view.matrix_widget.painted_accuracy[3] == "n/a"
    assert "72.7%" in view.accuracy_label.text()  # 8 of 11


def _misclassified(y, pred, n=10):
    wrong = np.flatnonzero(y != pred)[:n]
    rng = np.random.default_rng(1)
    images = rng.normal(0, 1, (len(wrong), 1, 8, 8)).astype(np.float32)
    conf = np.linspace(0.95, 0.5, len(wrong))
    return wrong, images, conf


def test_misclassified_captions_and_click_emits_position(view, qtbot):
    y, pred = _labels()
    view.set_confusion(confusion_matrix(y, pred, labels=range(K)), None, None, NAMES)
    wrong, images, conf = _misclassified(y, pred)
    view.set_misclassified(images, y[wrong], pred[wrong], NAMES, conf)
    assert view.mis_grid.count() == len(wrong)
    assert view.misclassified_captions()[0] == f"true {NAMES[y[wrong[0]]]} \u2192 pred {NAMES[pred[wrong[0]]]} (95%)"
    with qtbot.waitSignal(view.sample_selected, timeout=1000) as sig:
        qtbot.mouseClick(view.mis_grid, Qt.MouseButton.LeftButton, pos=view.mis_grid.tile_rect(3).center())
    assert sig.args == [3]


def test_clicking_a_cell_filters_the_mistakes(view, qtbot):
    y, pred = _labels()
    m = confusion_matrix(y, pred, labels=range(K))
    view.set_confusion(m, None, None, NAMES)
    wrong, images, conf = _misclassified(y, pred, n=40)
    view.set_misclassified(images, y[wrong], pred[wrong], NAMES, conf)
    t, q = int(y[wrong[5]]), int(pred[wrong[5]])
    cw = view.matrix_widget
    qtbot.mouseClick(cw, Qt.MouseButton.LeftButton, pos=cw.cell_rect(t, q).center())
    expected = [i for i in range(len(wrong)) if y[wrong[i]] == t and pred[wrong[i]] == q]
    assert view.shown_positions() == expected
    with qtbot.waitSignal(view.sample_selected, timeout=1000) as sig:
        qtbot.mouseClick(view.mis_grid, Qt.MouseButton.LeftButton, pos=view.mis_grid.tile_rect(len(expected) - 1).center())
    assert sig.args == [expected[-1]]  # the position in the full list, not in the filtered one
    qtbot.mouseClick(cw, Qt.MouseButton.LeftButton, pos=cw.cell_rect(t, q).center())  # again: show all
    assert view.shown_positions() == list(range(len(wrong)))


def test_bad_input_never_crashes(view):
    view.set_confusion(np.zeros((3, 4)), None, None, NAMES)
    assert view.placeholder.isVisible() and "square" in view.placeholder.text()
    view.set_confusion(np.zeros((2, 2), np.int64), None, None, ["a", "b"])  # no samples at all
    view.grab()
    assert "n/a" in view.accuracy_label.text()
    view.set_misclassified(np.zeros((3, 1, 4, 4)), np.zeros(2), np.zeros(3), ["a", "b"])
    assert view.mis_grid.count() == 0 and "one entry per image" in view.mis_title.text()
    view.set_misclassified(None)
    assert view.shown_positions() == []


def test_many_classes_still_render(view):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 40, 2000)
    m = confusion_matrix(y, np.where(rng.random(2000) < 0.7, y, rng.integers(0, 40, 2000)), labels=range(40))
    view.set_confusion(m, None, None, [f"class {i}" for i in range(40)])
    view.grab()
    np.testing.assert_array_equal(view.displayed_confusion(), m)
    # what the user reads: every class's accuracy is painted, from the matrix (not just stored)
    per_class = m.diagonal() / m.sum(1)
    assert view.matrix_widget.painted_accuracy == {t: f"{100 * per_class[t]:.0f}%" for t in range(40)}


@pytest.mark.parametrize("k", [2, 3, 10])
def test_axis_titles_fit_whole_at_the_default_dock_size(qtbot, k):
    """At about 380 x 300 (the dock's default size) both axis titles are painted whole, inside the matrix widget."""
    from PySide6.QtGui import QFontMetrics

    from widgets.views.evaluation import LEFT_TITLE, TOP_TITLE

    v = EvaluationView()
    qtbot.addWidget(v)
    v.resize(380, 300)
    v.show()
    qtbot.waitExposed(v)
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 200)
    pred = np.where(rng.random(200) < 0.8, y, rng.integers(0, k, 200))
    m = confusion_matrix(y, pred, labels=range(k))
    v.set_confusion(m, None, None, [f"class {i}" for i in range(k)])
    v.set_misclassified(rng.random((20, 1, 8, 8)).astype(np.float32), y[:20], pred[:20])
    v.grab()
    mw = v.matrix_widget
    fm = QFontMetrics(mw._title_font)
    titles = mw.painted_titles
    assert set(titles) == {TOP_TITLE, LEFT_TITLE}
    assert mw.rect().contains(titles[TOP_TITLE]) and mw.rect().contains(titles[LEFT_TITLE])
    assert titles[TOP_TITLE].width() >= fm.horizontalAdvance(TOP_TITLE)  # whole word, not clipped
    assert titles[LEFT_TITLE].height() >= fm.horizontalAdvance(LEFT_TITLE)  # rotated: the text runs vertically
    x0 = mw.cell_rect(0, 0).x()
    assert titles[LEFT_TITLE].right() < x0 - mw._label_w + 4  # left of the class labels, not over them
    assert titles[TOP_TITLE].bottom() < mw.cell_rect(0, 0).y() - fm.height()  # above the column labels
    assert mw.rect().contains(mw.cell_rect(k - 1, k - 1))  # and the whole matrix is in view
