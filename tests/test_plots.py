"""Tests for grace.plots: every figure builds with the expected axes/artists and saves as PNG."""

import matplotlib

matplotlib.use("Agg")  # headless; the module itself never picks a backend

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

try:  # tests/ on sys.path (pytest's default rootdir handling) or tests as a package
    from test_analysis import ORIENT, SCORES, make_table
except ImportError:  # pragma: no cover
    from tests.test_analysis import ORIENT, SCORES, make_table

from grace import analysis as A  # noqa: E402
from grace import plots as P  # noqa: E402


@pytest.fixture(scope="module")
def table():
    return make_table()


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]


def test_correlation_bars(table):
    sp = A.spearman_table(table, scores=SCORES, orientation=ORIENT, n_boot=100)
    fig = P.plot_correlation_bars(sp, title="Fig 4")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(_bars(ax)) == len(SCORES)
    heights = [b.get_height() for b in _bars(ax)]
    assert heights == pytest.approx(np.nan_to_num(sp["rho_oriented"].to_numpy()))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(sp["label"])
    assert ax.get_title() == "Fig 4"


def test_score_vs_target(table):
    fig = P.plot_score_vs_target(table, "grace", orientation=ORIENT)
    ax = fig.axes[0]
    assert "ρ = " in ax.get_title() and "lower is better" in ax.get_xlabel()
    raw, _ = A.spearman(table["grace"].to_numpy(float), table["student_avg_at_k"].to_numpy(float))
    assert f"oriented ρ = {-raw:.2f} " in ax.get_title()  # the oriented ρ the captions print, not the raw one
    points, star = ax.collections[0], ax.collections[-1]
    assert len(points.get_offsets()) == len(table)
    best = table.loc[table["grace"].idxmin()]
    assert tuple(star.get_offsets()[0]) == pytest.approx((best["grace"], best["student_avg_at_k"]))
    with pytest.raises(ValueError, match="unknown score"):
        P.plot_score_vs_target(table, "nope", orientation=ORIENT)


def test_teacher_case_study(table):
    fig = P.plot_teacher_case_study(table, 0.6, ["grace", "g_vendi", "g_var"], orientation=ORIENT)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        tri = ax.collections[-1]
        assert np.allclose(tri.get_facecolor()[0][:3], 0)  # black triangle on the pick
        assert "gap = " in ax.get_legend().get_texts()[0].get_text()
    assert "gap = 0.000" in fig.axes[2].get_legend().get_texts()[0].get_text()  # monotone g_var
    with pytest.raises(ValueError, match="temperature 0.33"):
        P.plot_teacher_case_study(table, 0.33, ["grace"], orientation=ORIENT)


def test_temperature_curves(table):
    fig = P.plot_temperature_curves(table, ["qwen-1.5b", "llama-8b"], ["grace", "g_vendi"],
                                    orientation=ORIENT)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 1 + 1 + 2  # target, best-temperature marker, two scores
        for line in lines[2:]:
            y = np.asarray(line.get_ydata(), float)
            assert y.min() == pytest.approx(0) and y.max() == pytest.approx(1)
    labels = fig.axes[-1].get_legend_handles_labels()[1]
    # lower-is-better score sign-inverted, higher-is-better one not
    assert "−" + A.score_label("grace") in labels and A.score_label("g_vendi") in labels
    with pytest.raises(ValueError, match="unknown teachers"):
        P.plot_temperature_curves(table, ["gpt"], ["grace"], orientation=ORIENT)


def test_temperature_violins_and_size_budgets(table):
    tt = A.temperature_table(table, ["grace", "g_vendi", "g_var"], orientation=ORIENT)
    fig = P.plot_temperature_violins(tt)
    assert len(fig.axes[0].get_xticklabels()) == 3
    sb = A.size_budget_table(table, [3e9, 10e9, 30e9], ["grace", "g_vendi"], orientation=ORIENT)
    fig = P.plot_size_budgets(sb)
    assert len(_bars(fig.axes[0])) == 3 * 2
    assert fig.axes[0].get_xticklabels()[0].get_text() == "≤3B\n(n=12)"


def test_gaps(table):
    fg = A.family_gap_table(table, ["grace", "g_vendi", "teacher_accuracy"], orientation=ORIENT)
    fig = P.plot_gaps(fg, title="Fig 13")
    ax = fig.axes[0]
    assert len(_bars(ax)) == 4 * 3  # 3 families + mean, 3 scores
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "mean"
    assert max(b.get_height() for b in _bars(ax)) == pytest.approx(100 * fg["gap"].max())


def test_robustness(table):
    rb = A.robustness_subsets(table, SCORES, n_subsets=10, orientation=ORIENT)
    fig = P.plot_robustness(rb)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(ticks) == len(SCORES) - 1  # constant "badge" is all NaN and dropped
    assert ticks[0] == A.score_label("g_var")  # best median first


def test_grad_norm_and_ablation():
    T = np.arange(10, 300, 10)
    fig = P.plot_grad_norm_vs_length(T, 4 / np.log(T) + 0.2)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1 and "log(T)" in ax.get_legend().get_texts()[1].get_text()
    ab = pd.DataFrame(dict(d=[64, 128, 256, 512] * 2, n=[256] * 4 + [512] * 4,
                           rho_oriented=np.linspace(0.2, 0.9, 8)))
    fig = P.plot_ablation(ab, x="d", hue="n")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and list(lines[1].get_xdata()) == [64, 128, 256, 512]
    assert fig.axes[0].get_xscale() == "log"


def test_save_figure(tmp_path, table):
    fig = P.plot_score_vs_target(table, "g_var", orientation=ORIENT)
    out = tmp_path / "figs" / "fig2.png"
    P.save_figure(fig, out, dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["fig2.png"]  # no temp file left over
    with pytest.raises(ValueError, match="jpg"):
        P.save_figure(fig, tmp_path / "fig.jpg")


def test_no_pyplot_figures_left_open(table):
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    P.plot_correlation_bars(A.spearman_table(table, orientation=ORIENT, n_boot=0))
    assert len(plt.get_fignums()) == before


def test_regime_map_figure_has_a_cell_per_regime_and_score_and_a_dot_per_seed():
    import pandas as pd

    from grace.plots import plot_regime_map

    t = pd.DataFrame([{"regime": r, "seed": s, "score": sc, "label": sc.upper(), "rho_oriented": v}
                      for r, base in (("a", 0.5), ("b", -0.5)) for s in (0, 1, 2)
                      for sc, v in (("grace", base + 0.1 * s), ("g_var", float("nan")))])
    fig = plot_regime_map(t, ["grace", "g_var"])
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_yticklabels()] == ["a", "b"]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["GRACE", "G_VAR"]
    texts = sorted(x.get_text() for x in ax.texts)
    assert texts == ["+0.60", "-0.40", "—", "—"]  # the seeds' means; a cell without a number says so
    assert sum(len(c.get_offsets()) for c in ax.collections) == 12  # one dot per seed and cell
