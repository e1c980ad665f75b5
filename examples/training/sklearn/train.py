"""A scikit-learn training job under Sluice's job contract, sluice.job/v1.

Reads the split data and the settings from the SLUICE_* environment variables, trains a
LogisticRegression (classification) or a Ridge regression (regression), and writes an MLflow model
folder to SLUICE_OUTPUT: MLmodel (onnx flavor and signature), model.onnx and metrics.json.

The ONNX graph is built by hand with the onnx package's helper API from the fitted coefficients
(ai.onnx.ml Imputer, OneHotEncoder, LinearClassifier / LinearRegressor), so the example needs only
Debian's python3-sklearn and python3-onnx. For your own models, skl2onnx, onnxmltools (XGBoost,
LightGBM) and torch.onnx build the graph for you.

Features: numbers (missing values are replaced by the training mean, inside the graph too) and
categories (one-hot over the levels seen in training; an unseen or missing level is all zeros).
Booleans and datetimes arrive as text and are treated as categories.

Hyperparameters (SLUICE_HYPERPARAMETERS, all optional):
  C             inverse regularization strength of LogisticRegression (default 1.0)
  alpha         Ridge penalty (default 1.0)
  max_iter      solver iterations for LogisticRegression (default 1000)
  input_layout  "per-feature" (default: one named input per feature, [N,1] float or string) or
                "tensor" (one float input "input" of shape [N, features]; numeric features only)
"""
import csv
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error, r2_score

FLOAT, STRING = TensorProto.FLOAT, TensorProto.STRING
NUMERIC_TYPES = ("number", "integer")


def env(name):
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"train.py: {name} is not set; run me under sluice.job/v1 (sluice job test)")
    return value


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    return header, rows


def to_float(text):
    try:
        return float(text) if text != "" else math.nan
    except ValueError:
        return math.nan


class Encoder:
    """Numbers (mean-imputed) first, in feature order, then each category's one-hot block."""

    def __init__(self, features, kinds, header, rows):
        self.features = features
        self.kinds = kinds
        self.index = {name: i for i, name in enumerate(header)}
        self.numeric = [f for f in features if kinds[f] == "number"]
        self.categorical = [f for f in features if kinds[f] == "string"]
        raw = self.numeric_matrix(rows)
        with np.errstate(invalid="ignore"):
            means = np.nanmean(raw, axis=0) if raw.shape[0] else np.zeros(raw.shape[1])
        self.means = np.where(np.isnan(means), 0.0, means)
        self.levels = {f: sorted({r[self.index[f]] for r in rows} - {""}) for f in self.categorical}

    def numeric_matrix(self, rows):
        cols = [self.index[f] for f in self.numeric]
        return np.array([[to_float(r[c]) for c in cols] for r in rows], dtype=np.float64).reshape(len(rows), len(cols))

    def transform(self, rows):
        x = self.numeric_matrix(rows)
        x = np.where(np.isnan(x), self.means, x)
        blocks = [x]
        for f in self.categorical:
            levels = self.levels[f]
            pos = {v: i for i, v in enumerate(levels)}
            block = np.zeros((len(rows), len(levels)))
            for i, r in enumerate(rows):
                j = pos.get(r[self.index[f]])
                if j is not None:
                    block[i, j] = 1.0
            blocks.append(block)
        return np.hstack(blocks)


def sort_classes(labels):
    """As Sluice sorts class labels: numerically when every label is a number, else as text."""
    labels = sorted(set(labels))
    try:
        return sorted(labels, key=float)
    except ValueError:
        return labels


def scale_columns(x):
    """Column scales for a well-conditioned fit; folded back into the coefficients afterwards."""
    scale = x.std(axis=0) if x.shape[0] else np.ones(x.shape[1])
    return np.where(scale > 0, scale, 1.0)


def onnx_front(encoder, layout, nodes):
    """Graph inputs and the nodes that turn them into one float matrix "features" [N, width]."""
    if layout == "tensor":
        if encoder.categorical:
            sys.exit(
                f"train.py: input_layout 'tensor' takes numeric features only; {', '.join(encoder.categorical)} "
                "are categories (use the default per-feature layout)"
            )
        nodes.append(
            helper.make_node(
                "Imputer", ["input"], ["features"], domain="ai.onnx.ml",
                imputed_value_floats=[float(m) for m in encoder.means], replaced_value_float=float("nan"),
            )
        )
        return [helper.make_tensor_value_info("input", FLOAT, ["N", len(encoder.numeric)])]
    inputs = []
    parts = []
    for f in encoder.features:
        kind = encoder.kinds[f]
        inputs.append(helper.make_tensor_value_info(f, FLOAT if kind == "number" else STRING, ["N", 1]))
    if encoder.numeric:
        nodes.append(helper.make_node("Concat", list(encoder.numeric), ["numbers_raw"], axis=1))
        nodes.append(
            helper.make_node(
                "Imputer", ["numbers_raw"], ["numbers"], domain="ai.onnx.ml",
                imputed_value_floats=[float(m) for m in encoder.means], replaced_value_float=float("nan"),
            )
        )
        parts.append("numbers")
    for i, f in enumerate(encoder.categorical):
        levels = encoder.levels[f] or [""]
        nodes.append(
            helper.make_node(
                "OneHotEncoder", [f], [f"onehot_{i}_3d"], domain="ai.onnx.ml", cats_strings=levels, zeros=1,
            )
        )
        nodes.append(helper.make_node("Flatten", [f"onehot_{i}_3d"], [f"onehot_{i}"], axis=1))
        parts.append(f"onehot_{i}")
    nodes.append(helper.make_node("Concat", parts, ["features"], axis=1))
    return inputs


def signature_input(encoder, layout):
    if layout == "tensor":
        return [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, len(encoder.numeric)]}, "name": "input"}]
    return [
        {
            "type": "tensor",
            "tensor-spec": {"dtype": "float32" if encoder.kinds[f] == "number" else "str", "shape": [-1, 1]},
            "name": f,
        }
        for f in encoder.features
    ]


def write_mlmodel(path, onnx_file, sig_in, sig_out):
    def quoted(value):
        return "'" + json.dumps(value).replace("'", "''") + "'"

    with open(path, "w", encoding="utf-8") as f:
        f.write(
            "artifact_path: model\n"
            "flavors:\n"
            "  onnx:\n"
            "    code: null\n"
            f"    data: {onnx_file}\n"
            f"    onnx_version: {onnx.__version__}\n"
            "    providers:\n"
            "    - CPUExecutionProvider\n"
            "signature:\n"
            f"  inputs: {quoted(sig_in)}\n"
            f"  outputs: {quoted(sig_out)}\n"
            "  params: null\n"
        )


def main():
    target = env("SLUICE_TARGET")
    features = json.loads(env("SLUICE_FEATURES"))
    task = env("SLUICE_TASK")
    seed = int(env("SLUICE_SEED"))
    hp = json.loads(env("SLUICE_HYPERPARAMETERS"))
    out = env("SLUICE_OUTPUT")
    layout = hp.get("input_layout", "per-feature")
    if layout not in ("per-feature", "tensor"):
        sys.exit(f"train.py: input_layout must be 'per-feature' or 'tensor', not {layout!r}")
    with open(env("SLUICE_CONTRACT"), encoding="utf-8") as f:
        types = {c["name"]: c["type"] for c in json.load(f)["columns"]}
    kinds = {name: "number" if types.get(name) in NUMERIC_TYPES else "string" for name in features}

    header, train_rows = read_csv(env("SLUICE_TRAIN"))
    parts = {"train": train_rows}
    for part, var in (("validation", "SLUICE_VALIDATION"), ("holdout", "SLUICE_HOLDOUT")):
        part_header, rows = read_csv(env(var))
        if part_header != header:
            sys.exit(f"train.py: {var} has columns {part_header}, expected {header}")
        parts[part] = rows
    print(f"train.py: {task} of {target} on {len(features)} features; rows: "
          + ", ".join(f"{k} {len(v)}" for k, v in parts.items()), flush=True)

    encoder = Encoder(features, kinds, header, train_rows)
    x = {k: encoder.transform(v) for k, v in parts.items()}
    scale = scale_columns(x["train"])
    t = header.index(target)
    nodes = []
    inputs = onnx_front(encoder, layout, nodes)
    metrics = {}

    if task == "classification":
        y = {k: [r[t] for r in v] for k, v in parts.items()}
        classes = sort_classes(y["train"])
        if len(classes) < 2:
            sys.exit(f"train.py: the training rows hold one class only ({classes})")
        model = LogisticRegression(C=float(hp.get("C", 1.0)), max_iter=int(hp.get("max_iter", 1000)), random_state=seed)
        model.fit(x["train"] / scale, y["train"])
        # Coefficients on the unscaled features, one row per class in Sluice's class order.
        coef = model.coef_ / scale
        intercept = model.intercept_
        if len(model.classes_) == 2:  # one row for the second class: softmax over [0, w] is the same sigmoid
            coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
            intercept = np.array([0.0, intercept[0]])
        order = [list(model.classes_).index(c) for c in classes]
        coef, intercept = coef[order], intercept[order]
        nodes.append(
            helper.make_node(
                "LinearClassifier", ["features"], ["label", "probabilities"], domain="ai.onnx.ml",
                coefficients=[float(v) for v in coef.ravel()], intercepts=[float(v) for v in intercept],
                classlabels_strings=classes, post_transform="SOFTMAX",
            )
        )
        outputs = [
            helper.make_tensor_value_info("label", STRING, ["N"]),
            helper.make_tensor_value_info("probabilities", FLOAT, ["N", len(classes)]),
        ]
        sig_out = [
            {"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}, "name": "label"},
            {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, len(classes)]}, "name": "probabilities"},
        ]
        for part, xs in x.items():
            if len(xs) == 0:
                continue
            metrics[f"{part}_accuracy"] = float(accuracy_score(y[part], model.predict(xs / scale)))
            if set(y[part]) <= set(model.classes_):
                metrics[f"{part}_log_loss"] = float(log_loss(y[part], model.predict_proba(xs / scale), labels=model.classes_))
    elif task == "regression":
        y = {k: np.array([to_float(r[t]) for r in v]) for k, v in parts.items()}
        model = Ridge(alpha=float(hp.get("alpha", 1.0)), random_state=seed)
        model.fit(x["train"] / scale, y["train"])
        coef = model.coef_ / scale
        nodes.append(
            helper.make_node(
                "LinearRegressor", ["features"], ["variable"], domain="ai.onnx.ml",
                coefficients=[float(v) for v in coef], intercepts=[float(model.intercept_)], targets=1,
            )
        )
        outputs = [helper.make_tensor_value_info("variable", FLOAT, ["N", 1])]
        sig_out = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}, "name": "variable"}]
        for part, xs in x.items():
            if len(xs) == 0:
                continue
            pred = model.predict(xs / scale)
            metrics[f"{part}_rmse"] = float(math.sqrt(mean_squared_error(y[part], pred)))
            metrics[f"{part}_mae"] = float(mean_absolute_error(y[part], pred))
            if len(xs) > 1:
                metrics[f"{part}_r2"] = float(r2_score(y[part], pred))
    else:
        sys.exit(f"train.py: SLUICE_TASK must be classification or regression, not {task!r}")

    graph = helper.make_graph(nodes, f"sluice_sklearn_{task}", inputs, outputs)
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="sluice-example-sklearn",
        producer_version="1",
    )
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.onnx"), "wb") as f:
        f.write(onnx_model.SerializeToString())
    write_mlmodel(os.path.join(out, "MLmodel"), "model.onnx", signature_input(encoder, layout), sig_out)
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
    print("train.py: metrics " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())), flush=True)
    print(f"train.py: wrote MLmodel, model.onnx and metrics.json to {out}", flush=True)


if __name__ == "__main__":
    main()
