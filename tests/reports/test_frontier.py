"""The privacy-utility frontier (reports/frontier*.py) on synthetic report dicts, no training:
grouping into curves and epsilon points, means and Student-t intervals against closed forms,
each verdict outcome of the built-in and custom claims, the figure, the renderings, and the
schema check rejecting a bad frontier."""

from __future__ import annotations

import copy
import io
import json
import math

import pytest

from audit.core.errors import InvalidParameterError
from reports.formatting import md_escape
from reports.frontier import build_frontier, mean_interval, run_metrics
from reports.frontier_claims import (BUILTIN_CLAIMS, FrontierClaim, difference_interval, judge,
                                     ratio_interval)
from reports.frontier_plot import frontier_png
from reports.frontier_render import (cell, curve_table, figure_name, frontier_markdown, frontier_text,
                                     frontier_view, write_frontier)
from reports.frontier_schema import validate_frontier

#: t_{0.975, 2} in closed form: with 2 degrees of freedom t_p = (2p - 1) / sqrt(2p(1 - p)) (4.303)
T975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
NOISES = (0.5, 1.0, 2.0, 4.0, 8.0)


def _metric(name, mean, baseline=None):
    return {"name": name, "unit": "", "direction": "higher-leaks-more", "mean": mean, "worst": mean,
            "per_item": [], "baseline": baseline, "note": None}


def report(defense="dp-fedavg", *, eps=None, seed=0, params=None, attack="loss", utility=None,
           metrics=None, privacy_eps=None, dataset="purchase-synthetic", has_dp=None):
    """A minimal report dict: one finding of ``attack`` against ``defense``."""
    has_dp = eps is not None if has_dp is None else has_dp
    setting = {"dataset": dataset, "model": "mlp", "model_params": {}, "batch_size": 7 + seed,
               "num_targets": 2, "local_steps": 1, "rounds": 1, "clients": 2}
    if utility is not None:
        setting["target_test_accuracy"] = utility
    finding = {"id": f"{defense}:{attack}", "title": "t",
               "defense": {"name": defense, "params": dict(params or {})},
               "claim": {"has_dp": has_dp, "epsilon": eps if has_dp else None},
               "attack": {"name": attack, "family": "membership", "params": {}},
               "setting": setting, "metrics": [_metric(n, v) for n, v in (metrics or {}).items()]}
    if privacy_eps is not None:
        finding["privacy_audit"] = {"estimate": {"estimator": "cp", "epsilon": privacy_eps}}
    return {"seed": seed, "findings": [finding]}


def grid(defense="dp-fedavg", *, seeds=(0, 1, 2), noises=NOISES, utility=lambda z, s: 0.5 - 0.01 * z + 0.01 * s,
         metrics=lambda z, s: {}, params=None, eps=lambda z: 8.0 / z, **kw):
    return [report(defense, eps=eps(z), seed=s, params={**(params or {}), "noise_multiplier": z},
                   utility=None if utility is None else utility(z, s), metrics=metrics(z, s), **kw)
            for z in noises for s in seeds]


def baseline(defense="fedsgd", seeds=(0, 1, 2), utility=lambda s: 0.6 + 0.01 * s, **kw):
    return [report(defense, seed=s, utility=None if utility is None else utility(s), **kw) for s in seeds]


def verdict_of(frontier, claim_id):
    return next(v for v in frontier["verdicts"] if v["claim"] == claim_id)


# -- means and intervals ----------------------------------------------------------------------------

def test_student_t_interval_matches_the_closed_form():
    stat = mean_interval([1.0, 2.0, 3.0])
    half = T975_2 * 1.0 / math.sqrt(3)  # s = 1
    assert stat["mean"] == 2.0 and stat["n"] == 3
    assert stat["interval"] == pytest.approx([2 - half, 2 + half], rel=1e-12)
    assert mean_interval([4.0, 4.0, 4.0])["interval"] == [4.0, 4.0]
    wide = mean_interval([1.0, 2.0, 3.0], confidence=0.99)["interval"]
    assert wide[0] < 2 - half and wide[1] > 2 + half


def test_one_seed_has_no_interval_and_is_flagged():
    assert mean_interval([0.7]) == {"mean": 0.7, "interval": None, "n": 1, "values": [0.7]}
    f = build_frontier(grid(seeds=(0,)) + baseline(seeds=(0,)))
    point = f["curves"][0]["points"][0]
    assert point["single_seed"] and point["metrics"]["target_test_accuracy"]["interval"] is None


def test_interval_arithmetic():
    assert ratio_interval([0.4, 0.6], [0.8, 1.0]) == pytest.approx((0.4, 0.75))
    assert ratio_interval([-0.2, 0.6], [0.5, 1.0]) == pytest.approx((-0.4, 1.2))
    assert ratio_interval([0.4, 0.6], [0.0, 1.0]) is None
    assert difference_interval([1.0, 2.0], [0.5, 0.7]) == pytest.approx((0.3, 1.5))


# -- grouping ---------------------------------------------------------------------------------------

def test_runs_group_into_curves_points_and_a_baseline():
    runs = grid() + grid(params={"mode": "central"}) + baseline() + baseline("fedavg")
    f = build_frontier(runs, runs=[f"r{i}" for i in range(len(runs))])
    assert [c["defense"] for c in f["curves"]] == ["dp-fedavg", "dp-fedavg"]
    assert {c["label"] for c in f["curves"]} == {"dp-fedavg \u00b7 loss (mode=central)", "dp-fedavg \u00b7 loss"}
    curve = next(c for c in f["curves"] if "mode" not in c["params"])
    assert "noise_multiplier" not in curve["params"]
    assert [p["epsilon"] for p in curve["points"]] == sorted(8.0 / z for z in NOISES)
    assert all(p["n_seeds"] == 3 and p["seeds"] == [0, 1, 2] for p in curve["points"])
    assert curve["points"][0]["runs"] == ["r12", "r13", "r14"]  # noise 8: the smallest epsilon
    # two undefended defenses: the one with the most runs, then by name (no 'base' parameter)
    assert curve["baseline"]["defense"] == "fedavg" and curve["baseline"]["epsilon"] is None
    acc = curve["points"][-1]["metrics"]["target_test_accuracy"]  # noise 0.5
    assert acc["mean"] == pytest.approx(0.5 - 0.005 + 0.01) and acc["n"] == 3
    assert curve["utility_metric"] == "target_test_accuracy"
    validate_frontier(json.loads(json.dumps(f)))


def test_the_base_parameter_picks_the_baseline_and_a_claimless_config_is_infinity():
    runs = (grid(params={"base": "fedsgd"}) + baseline("fedsgd") + baseline("fedavg", seeds=(0, 1, 2, 3))
            + [report("dp-fedavg", seed=s, params={"base": "fedsgd", "noise_multiplier": 0.0}, utility=0.59)
               for s in range(3)])
    curve = build_frontier(runs)["curves"][0]
    assert curve["baseline"]["defense"] == "fedsgd"
    assert curve["points"][-1]["epsilon"] is None and len(curve["points"]) == 6


def test_other_attacks_and_datasets_are_other_curves_with_their_own_baseline():
    runs = grid() + grid(dataset="digits") + baseline(dataset="digits")
    f = build_frontier(runs)
    assert len(f["curves"]) == 2
    assert {c["match"]["setting"]["dataset"]: c["baseline"] is not None for c in f["curves"]} == {
        "purchase-synthetic": False, "digits": True}


def test_metrics_utility_and_attack_success():
    r = report(eps=1.0, utility=0.4, metrics={"psnr (PSI)": 12.0, "TPR @ 1.0% FPR": 0.02, "ssim": 0.3,
                                               "global_accuracy": 0.7, "label_accuracy": 1.0},
               privacy_eps=0.5)
    r["findings"][0]["utility"] = {"iou": 0.3}
    assert run_metrics(r) == {"iou": ("utility", 0.3), "target_test_accuracy": ("utility", 0.4),
                              "psnr (PSI)": ("attack", 12.0), "TPR @ 1.0% FPR": ("attack", 0.02),
                              "global_accuracy": ("utility", 0.7), "epsilon_emp": ("attack", 0.5)}
    curve = build_frontier([r])["curves"][0]
    assert curve["utility_metric"] == "iou"
    assert [m["kind"] for m in curve["metrics"]] == ["utility"] * 3 + ["attack"] * 3


# -- verdicts ---------------------------------------------------------------------------------------

def _eps_emp(values):
    return lambda z, s: {"epsilon_emp (one-run)": values(z, s)}


def test_empirical_epsilon_claim_holds_fails_and_overlaps():
    holds = build_frontier(grid(metrics=_eps_emp(lambda z, s: 0.1 * s)) + baseline())
    v = verdict_of(holds, "dp-fedavg-bound")
    assert v["verdict"] == "holds" and v["metric"] == "epsilon_emp (one-run)" and len(v["evidence"]) == 5
    fails = build_frontier(grid(metrics=_eps_emp(lambda z, s: 20.0 + s)))
    v = verdict_of(fails, "dp-fedavg-bound")
    assert v["verdict"] == "fails" and "ε = 1" in v["reason"]  # every point; 1 is the smallest
    # spread straddling the claim at the largest epsilon, clearly below it elsewhere
    overlap = build_frontier(grid(metrics=_eps_emp(lambda z, s: (16.0 + 8 * (s - 1)) if z == 0.5 else 0.0)))
    assert verdict_of(overlap, "dp-fedavg-bound")["verdict"] == "not judgeable: intervals overlap"


def test_too_few_points_or_seeds_is_not_judgeable():
    few = build_frontier(grid(noises=NOISES[:4], metrics=_eps_emp(lambda z, s: 0.0)))
    assert verdict_of(few, "dp-fedavg-bound")["verdict"] == \
        "not judgeable: 4 ε points / 3 seeds, need ≥ 5 / ≥ 3"
    two = build_frontier(grid(seeds=(0, 1), metrics=_eps_emp(lambda z, s: 0.0)))
    assert verdict_of(two, "dp-fedavg-bound")["verdict"] == \
        "not judgeable: 5 ε points / 2 seeds, need ≥ 5 / ≥ 3"


def test_a_missing_metric_is_not_judgeable():
    f = build_frontier(grid())
    assert verdict_of(f, "dp-fedavg-bound")["verdict"] == \
        "not judgeable: the runs carry no 'epsilon_emp' metric"


def _fedre(utility, base_utility, psi=lambda z, s: 10.0, ref_psi=lambda z, s: 12.0):
    def runs(name, u, p):
        return grid(name, utility=None, metrics=lambda z, s: {"iou": u(z, s), "psnr (PSI)": p(z, s)},
                    attack="inverting-gradients")
    base = [report("fedsgd", seed=s, attack="inverting-gradients", metrics={"iou": base_utility(s)})
            for s in range(3)]
    return runs("fedre", utility, psi) + runs("uniform-ldp", utility, ref_psi) + base


def test_undefended_utility_below_the_floor_is_not_judgeable():
    f = build_frontier(_fedre(lambda z, s: 0.03, lambda s: 0.066))
    for claim in ("fedre-utility", "fedre-psi-privacy"):
        assert verdict_of(f, claim)["verdict"] == "not judgeable: undefended utility below 0.2 (iou = 0.066)"


def test_fedre_claims_hold_and_fail_against_undefended_and_uniform_ldp():
    good = build_frontier(_fedre(lambda z, s: 0.6 + 0.001 * s, lambda s: 0.6 + 0.001 * s,
                                 psi=lambda z, s: 9.0 + 0.1 * s, ref_psi=lambda z, s: 12.0 + 0.1 * s))
    assert verdict_of(good, "fedre-utility")["verdict"] == "holds"
    v = verdict_of(good, "fedre-psi-privacy")
    assert v["verdict"] == "holds" and {e["against"] for e in v["evidence"]} == {"uniform-ldp"}
    bad = build_frontier(_fedre(lambda z, s: 0.3 + 0.001 * s, lambda s: 0.6 + 0.001 * s,
                                psi=lambda z, s: 14.0 + 0.1 * s, ref_psi=lambda z, s: 12.0 + 0.1 * s))
    assert verdict_of(bad, "fedre-utility")["verdict"] == "fails"
    assert verdict_of(bad, "fedre-psi-privacy")["verdict"] == "fails"
    # a utility ratio whose interval straddles 0.95
    noisy = build_frontier(_fedre(lambda z, s: 0.57 + 0.05 * (s - 1), lambda s: 0.6 + 0.001 * s))
    assert verdict_of(noisy, "fedre-utility")["verdict"] == "not judgeable: intervals overlap"


def test_the_ratio_rule_uses_the_interval_ends():
    runs = grid(utility=lambda z, s: [0.5, 0.55, 0.6][s]) + baseline(utility=lambda s: [0.58, 0.6, 0.62][s])
    curve = build_frontier(runs)["curves"][0]
    d = mean_interval([0.5, 0.55, 0.6])["interval"]
    b = mean_interval([0.58, 0.6, 0.62])["interval"]
    ratio = (d[0] / b[1], d[1] / b[0])
    for threshold, expected in ((ratio[0] - 1e-9, "holds"), (ratio[1] + 1e-9, "fails"),
                                ((ratio[0] + ratio[1]) / 2, "not judgeable: intervals overlap")):
        claim = FrontierClaim("c", "dp-fedavg", "s", "test", "utility", "ratio-at-least", threshold=threshold)
        v = judge(claim, curve)
        assert v["verdict"] == expected, (threshold, v)
        assert v["evidence"][0]["interval"] == pytest.approx(list(ratio))


def test_reference_claims_need_the_references_and_common_points():
    deer = grid("deer", utility=lambda z, s: 0.55 + 0.001 * s)
    fedit = grid("fedit-lora", utility=lambda z, s: 0.40 + 0.001 * s)
    ffa = grid("ffa-lora", utility=lambda z, s: 0.45 + 0.001 * s)
    base = baseline("fedavg", utility=lambda s: 0.58 + 0.001 * s)
    assert verdict_of(build_frontier(deer + fedit + ffa + base), "deer-beats-baselines")["verdict"] == "holds"
    worse = grid("ffa-lora", utility=lambda z, s: 0.60 + 0.001 * s)
    assert verdict_of(build_frontier(deer + fedit + worse + base), "deer-beats-baselines")["verdict"] == "fails"
    assert verdict_of(build_frontier(deer + fedit + base), "deer-beats-baselines")["verdict"] == \
        "not judgeable: no ffa-lora runs with the same attack and setting"
    shifted = grid("ffa-lora", utility=lambda z, s: 0.45, eps=lambda z: 9.0 / z)  # other epsilons
    assert verdict_of(build_frontier(deer + fedit + shifted + base), "deer-beats-baselines")["verdict"] == \
        "not judgeable: 0 ε points in common with fedit-lora, ffa-lora / 0 seeds, need ≥ 5 / ≥ 3"
    low = baseline("fedavg", utility=lambda s: 0.2)
    assert verdict_of(build_frontier(deer + fedit + ffa + low), "deer-beats-baselines")["verdict"] == \
        "not judgeable: undefended utility below 0.3 (target_test_accuracy = 0.2)"
    assert verdict_of(build_frontier(deer + fedit + ffa), "deer-beats-baselines")["verdict"].startswith(
        "not judgeable: no undefended baseline")


def test_builtin_claims_cover_the_audited_defenses_and_only_claim_defenses_get_verdicts():
    assert {c.defense for c in BUILTIN_CLAIMS} >= {"fedre", "deer", "dr-encoder"}
    assert len({c.id for c in BUILTIN_CLAIMS}) == len(BUILTIN_CLAIMS)
    f = build_frontier(grid("uniform-ldp") + baseline())
    assert f["curves"] and f["verdicts"] == []
    with pytest.raises(ValueError, match="references"):
        FrontierClaim("x", "d", "s", "src", "utility", "above-reference")
    with pytest.raises(ValueError, match="kind"):
        FrontierClaim("x", "d", "s", "src", "utility", "better")


# -- figure and renderings --------------------------------------------------------------------------

def _full():
    return build_frontier(grid(metrics=_eps_emp(lambda z, s: 0.1 * s))
                          + grid(params={"mode": "central"}, seeds=(0,)) + baseline())


def test_the_figure_is_a_png_with_a_panel_per_metric():
    from PIL import Image

    f = _full()  # two metrics: accuracy and epsilon_emp (one-run)
    png = frontier_png(f["curves"], title="dp-fedavg $x$")
    assert png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == (720, 360)  # 2 panels of 3.6 in at 100 dpi
    one = build_frontier(grid() + baseline())["curves"]
    assert Image.open(io.BytesIO(frontier_png(one))).size == (360, 360)
    assert frontier_png([]).startswith(b"\x89PNG")


def test_write_frontier_writes_json_markdown_and_one_png_per_defense(tmp_path):
    runs = grid(metrics=_eps_emp(lambda z, s: 0.1 * s)) + grid("my defense.py:Top<K>") + baseline()
    view = write_frontier(tmp_path, runs, runs=[f"runs/{i}" for i in range(len(runs))])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frontier.json", "frontier.md", "frontier_dp-fedavg.png", "frontier_my_defense.py_Top_K_.png"]
    f = validate_frontier(json.loads((tmp_path / "frontier.json").read_text()))
    assert f["kind"] == "fedaudit-frontier" and verdict_of(f, "dp-fedavg-bound")["verdict"] == "holds"
    md = (tmp_path / "frontier.md").read_text()
    assert "![dp-fedavg frontier](frontier_dp-fedavg.png)" in md and "**holds**" in md
    assert "Top\\<K\\>" in md and "| ∞ (undefended: fedsgd) | 3 |" in md
    assert [d["name"] for d in view["defenses"]] == ["dp-fedavg", "my defense.py:Top<K>"]
    assert all(d["png_base64"] for d in view["defenses"])


def test_cells_tables_and_text_show_means_intervals_and_seeds():
    assert cell({"mean": 0.5, "interval": [0.4, 0.6123]}) == "0.5 [0.4, 0.612]"
    assert cell({"mean": 0.5, "interval": None}) == "0.5 (1 seed)" and cell(None) == "n/a"
    f = _full()
    curve = next(c for c in f["curves"] if "mode" not in c["params"])
    header, rows = curve_table(curve)
    assert header == ["ε", "seeds", "target_test_accuracy (utility)", "epsilon_emp (one-run) (attack)"]
    point = curve["points"][0]
    assert rows[0] == ["1", "3", cell(point["metrics"]["target_test_accuracy"]),
                       cell(point["metrics"]["epsilon_emp (one-run)"])]
    assert rows[-1][0] == "∞ (undefended: fedsgd)"
    text = frontier_text(f)
    assert "dp-fedavg · loss (mode=central)" in text and "(1 seed)" in text and "— holds" in text
    md = frontier_markdown(f, level=2)
    assert md.startswith("## Privacy–utility frontier") and "### dp-fedavg" in md
    assert "| " + " | ".join(md_escape(x) for x in rows[0]) + " |" in md
    assert figure_name("a/b") == "frontier_a_b.png"


def test_the_compliance_page_gets_an_escaped_frontier_section():
    from sample_report import make_report

    from audit.compliance.compliance_report import build_compliance
    from audit.compliance.policy import Policy
    from reports.compliance_render import compliance_html

    sample = make_report()
    sample["environment"]["git_revision"] = "0" * 40
    report = build_compliance([{"dir": "runs/a", "report": sample, "artifacts": []}],
                              policy=Policy(max_psnr=99), policy_source="test", command="test")
    f = build_frontier(grid("<script>x</script>") + baseline())
    page = compliance_html(report, None, frontier_view(f, {"<script>x</script>": frontier_png(f["curves"])}))
    section = page[page.index('<h2 id="frontier">'):page.index('<h2 id="findings">')]
    assert "Privacy–utility frontier" in section and "data:image/png;base64," in section
    assert "&lt;script&gt;x&lt;/script&gt;" in section and "<script>" not in page
    assert section.count("<table") == 1 and "∞ (undefended: fedsgd)" in section
    assert '<h2 id="frontier">' not in compliance_html(report)


def test_an_empty_frontier_renders():
    f = build_frontier(baseline())
    assert f["curves"] == [] and "No defended configuration" in frontier_text(f)
    assert "No defended configuration" in frontier_markdown(f)
    assert frontier_view(f)["defenses"] == []


# -- schema -----------------------------------------------------------------------------------------

def _bad(mutate):
    f = json.loads(json.dumps(build_frontier(grid(metrics=_eps_emp(lambda z, s: 0.1 * s)) + baseline())))
    mutate(f)
    return f


@pytest.mark.parametrize("mutate, match", [
    (lambda f: f.update(kind="fedaudit-ledger"), r"'kind' must be 'fedaudit-frontier'"),
    (lambda f: f.update(confidence=1.0), r"'confidence' must be a number in the range \(0, 1\)"),
    (lambda f: f["verdicts"][0].update(status="maybe"), r"'verdicts\[0\].status' must be one of"),
    (lambda f: f["verdicts"][0].update(verdict="fails"), r"'verdicts\[0\].verdict' must be 'holds'"),
    (lambda f: f["verdicts"][0].update(curve="nope"), r"'verdicts\[0\].curve' must be the id"),
    (lambda f: f["curves"][0]["points"][0]["metrics"]["target_test_accuracy"].update(mean=9.0),
     r"points\[0\].metrics.target_test_accuracy.mean' must be the mean of its values"),
    (lambda f: f["curves"][0]["points"][0]["metrics"]["target_test_accuracy"].update(interval=None),
     r"\.interval' must be a list \[low, high\]"),
    (lambda f: f["curves"][0]["points"][1].update(single_seed=True), r"points\[1\].single_seed' must be False"),
    (lambda f: f["curves"][0]["points"][0].update(epsilon=None), r"points\[0\].epsilon' must be a number"),
    (lambda f: f["curves"][0]["points"][0].update(epsilon=-1), r"points\[0\].epsilon' must be a number >= 0"),
    (lambda f: f["curves"][0].update(utility_metric="TPR"), r"'curves\[0\].utility_metric' must be one of"),
    (lambda f: f["curves"][0]["baseline"].update(epsilon=3.0), r"baseline.epsilon' must be null"),
    (lambda f: f["curves"].append(copy.deepcopy(f["curves"][0])), r"'curves\[1\].id' must be unique"),
    (lambda f: f["curves"][0].pop("points"), r"required key 'curves\[0\].points' is missing"),
])
def test_the_schema_rejects_a_bad_frontier(mutate, match):
    with pytest.raises(InvalidParameterError, match=match):
        validate_frontier(_bad(mutate))
