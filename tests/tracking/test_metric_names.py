"""Metric names from the stages' metrics JSON are made acceptable to MLflow."""

from redrobe.tracking import _numeric, metric_name


def test_names_mlflow_rejects_are_rewritten():
    assert metric_name("models.base.humaneval.pass@1") == "models.base.humaneval.pass_at_1"
    assert metric_name("a b/c:d-e_f.g") == "a b/c:d-e_f.g"          # already valid
    assert metric_name("x€y(z)") == "x_y_z_"


def test_numeric_flattens_and_renames():
    metrics = {"models": {"base": {"humaneval": {"pass@1": 0.5, "n": 2, "ok": True}}}}
    assert _numeric(metrics) == {"models.base.humaneval.pass_at_1": 0.5,
                                 "models.base.humaneval.n": 2.0}
