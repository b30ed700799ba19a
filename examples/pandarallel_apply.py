"""pandarallel's parallel_apply on rows, a Series and groups, checked against serial pandas.

    python examples/pandarallel_apply.py
    python -m transparent_mp examples/pandarallel_apply.py
"""

import math

import numpy as np
import pandas as pd
from pandarallel import pandarallel


def row_score(row):
    return math.sin(row.a) * row.b + math.sqrt(abs(row.c))

def square(x):
    return x * x

def group_stats(group):
    return group.b.mean() + group.c.max()


def by_group(frame):
    return frame.groupby("g")[["b", "c"]]

if __name__ == "__main__":
    pandarallel.initialize(nb_workers=2, progress_bar=False, verbose=0)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.random(20000), "b": rng.random(20000), "c": rng.normal(size=20000),
                       "g": rng.integers(0, 50, 20000)})
    r1 = df.parallel_apply(row_score, axis=1)
    assert r1.equals(df.apply(row_score, axis=1))
    r2 = df.a.parallel_apply(square)
    assert r2.equals(df.a.apply(square))
    r3 = by_group(df).parallel_apply(group_stats)
    assert r3.equals(by_group(df).apply(group_stats))
    print(f"pandarallel: rows {r1.sum():.6f} series {r2.sum():.6f} groups {r3.sum():.6f}")
