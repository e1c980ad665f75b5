"""Scores the rows of SLUICE_INPUT (CSV, the feature columns) with the pickled model in the folder
SLUICE_MODEL, and writes SLUICE_PREDICTIONS as CSV: `label` and one probability column per class
(classification) or `value` (regression), one line per input row, in the input's order."""
import csv
import os
import pickle
import sys

from sluice_pyfunc_model import read_csv


def main():
    model_dir = os.environ["SLUICE_MODEL"]
    with open(os.path.join(model_dir, "model.pkl"), "rb") as f:
        model = pickle.load(f)
    header, rows = read_csv(os.environ["SLUICE_INPUT"])
    with open(os.environ["SLUICE_PREDICTIONS"], "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        if not rows:
            out.writerow(["label", *model.classes] if model.task == "classification" else ["value"])
            return
        x = model.transform(header, rows)
        if model.task == "classification":
            out.writerow(["label", *model.classes])
            proba = model.estimator.predict_proba(x)
            labels = model.estimator.predict(x)
            for label, p in zip(labels, proba):
                out.writerow([str(label), *(repr(float(v)) for v in p)])
        else:
            out.writerow(["value"])
            for v in model.estimator.predict(x):
                out.writerow([repr(float(v))])
    print(f"score.py: scored {len(rows)} rows", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
