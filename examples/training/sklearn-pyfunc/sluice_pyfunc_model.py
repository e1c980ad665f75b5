"""The model of the python_function example: a fitted scikit-learn estimator with its feature
encoding, pickled as one object. train.py writes it, score.py loads it; both import this module, so
the pickle finds the class again (the code folder is the working directory of both commands)."""
import csv
import math

import numpy as np


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


class Model:
    """Numbers (mean-imputed) first, then each category's one-hot block, then the estimator."""

    def __init__(self, task, features, kinds, header, rows):
        self.task = task
        self.features = features
        self.numeric = [f for f in features if kinds[f] == "number"]
        self.categorical = [f for f in features if kinds[f] == "string"]
        index = {name: i for i, name in enumerate(header)}
        raw = self._numbers(rows, index)
        with np.errstate(invalid="ignore"):
            means = np.nanmean(raw, axis=0) if raw.shape[0] else np.zeros(raw.shape[1])
        self.means = np.where(np.isnan(means), 0.0, means)
        self.levels = {f: sorted({r[index[f]] for r in rows} - {""}) for f in self.categorical}
        self.estimator = None
        self.classes = None

    def _numbers(self, rows, index):
        cols = [index[f] for f in self.numeric]
        return np.array([[to_float(r[c]) for c in cols] for r in rows], dtype=np.float64).reshape(len(rows), len(cols))

    def transform(self, header, rows):
        index = {name: i for i, name in enumerate(header)}
        missing = [f for f in self.features if f not in index]
        if missing:
            raise ValueError(f"the rows have no column {', '.join(missing)}")
        x = self._numbers(rows, index)
        blocks = [np.where(np.isnan(x), self.means, x)]
        for f in self.categorical:
            pos = {v: i for i, v in enumerate(self.levels[f])}
            block = np.zeros((len(rows), len(self.levels[f])))
            for i, r in enumerate(rows):
                j = pos.get(r[index[f]])
                if j is not None:
                    block[i, j] = 1.0
            blocks.append(block)
        return np.hstack(blocks)
