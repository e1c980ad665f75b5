"""A scikit-learn job under sluice.job/v1 whose model has no ONNX graph: it pickles the fitted
model and writes an MLflow folder with only a python_function flavor. Sluice cannot score such a
model itself, so the pipeline names score.py as its `score` command, which evaluation runs over the
holdout rows for this model (and for a champion of the same kind).

Hyperparameters (SLUICE_HYPERPARAMETERS): C (LogisticRegression, default 1), alpha (Ridge, default 1),
max_iter (default 1000)."""
import json
import os
import pickle
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from sluice_pyfunc_model import Model, read_csv, to_float


def env(name):
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"train.py: {name} is not set; run me under sluice.job/v1 (sluice job test)")
    return value


def main():
    target = env("SLUICE_TARGET")
    features = json.loads(env("SLUICE_FEATURES"))
    task = env("SLUICE_TASK")
    seed = int(env("SLUICE_SEED"))
    hp = json.loads(env("SLUICE_HYPERPARAMETERS"))
    out = env("SLUICE_OUTPUT")
    with open(env("SLUICE_CONTRACT"), encoding="utf-8") as f:
        types = {c["name"]: c["type"] for c in json.load(f)["columns"]}
    kinds = {name: "number" if types.get(name) in ("number", "integer") else "string" for name in features}

    header, rows = read_csv(env("SLUICE_TRAIN"))
    print(f"train.py: {task} of {target} on {len(features)} features, {len(rows)} training rows", flush=True)
    model = Model(task, features, kinds, header, rows)
    x = model.transform(header, rows)
    t = header.index(target)
    if task == "classification":
        y = [r[t] for r in rows]
        model.estimator = LogisticRegression(C=float(hp.get("C", 1.0)), max_iter=int(hp.get("max_iter", 1000)), random_state=seed)
        model.estimator.fit(x, y)
        model.classes = [str(c) for c in model.estimator.classes_]
        metrics = {"train_accuracy": float(model.estimator.score(x, y))}
    elif task == "regression":
        y = np.array([to_float(r[t]) for r in rows])
        model.estimator = Ridge(alpha=float(hp.get("alpha", 1.0)), random_state=seed)
        model.estimator.fit(x, y)
        metrics = {"train_r2": float(model.estimator.score(x, y))}
    else:
        sys.exit(f"train.py: SLUICE_TASK must be classification or regression, not {task!r}")

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.pkl"), "wb") as f:
        pickle.dump(model, f, protocol=4)
    sig_in = [{"type": "string" if kinds[f] == "string" else "double", "name": f} for f in features]
    with open(os.path.join(out, "MLmodel"), "w", encoding="utf-8") as f:
        f.write(
            "artifact_path: model\n"
            "flavors:\n"
            "  python_function:\n"
            "    loader_module: sluice_pyfunc_model\n"
            "    data: model.pkl\n"
            f"    python_version: {sys.version.split()[0]}\n"
            "signature:\n"
            f"  inputs: '{json.dumps(sig_in)}'\n"
            "  outputs: null\n"
        )
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, sort_keys=True)
    print(f"train.py: wrote MLmodel (python_function), model.pkl and metrics.json to {out}", flush=True)


if __name__ == "__main__":
    main()
