"""The seed's Post-Query Balancing (section 3.5), verbatim, reading and writing JSONL.

Baseline for `npm run bench`: python3 bench/seed_balance.py INPUT OUTPUT [TOTAL] [RATIO] [SEED]
"""
import sys

import pandas as pd


def balance_by_class(df, label_col='reasoning_label', target_ratio=0.5, total_samples=100000):
    """Balance dataset by reasoning/non-reasoning labels."""
    reasoning_df = df[df[label_col] == 0]
    non_reasoning_df = df[df[label_col] == 1]

    n_reasoning = int(total_samples * target_ratio)
    n_non_reasoning = total_samples - n_reasoning

    reasoning_sample = reasoning_df.sample(n=min(n_reasoning, len(reasoning_df)),
                                           replace=len(reasoning_df) < n_reasoning)
    non_reasoning_sample = non_reasoning_df.sample(n=min(n_non_reasoning, len(non_reasoning_df)),
                                                    replace=len(non_reasoning_df) < n_non_reasoning)

    balanced = pd.concat([reasoning_sample, non_reasoning_sample]).sample(frac=1)
    return balanced


def main():
    src, dst = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    ratio = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 42
    import numpy as np
    np.random.seed(seed)  # the seed's code samples from numpy's global generator
    df = pd.read_json(src, lines=True)
    out = balance_by_class(df, label_col='label', target_ratio=ratio, total_samples=total)
    out.to_json(dst, orient='records', lines=True, force_ascii=False)
    counts = out['label'].value_counts().to_dict()
    print(f"{len(out)} rows written ({counts})")


if __name__ == '__main__':
    main()
