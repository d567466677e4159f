"""scikit-learn reference for the probe benchmark (bench/probe.mjs): the same split and
comparable features, scored by the same AUC. Benchmark only, never the product.

Text: HashingVectorizer word 1-2-grams and char 3-5-grams of " message " (lower-cased,
signed hashing, 2^18 features), sublinear tf, each block L2-normalised and weighted
1/sqrt(2); LogisticRegression(C=1, lbfgs). Signals: the same twelve columns as
shared/probe/features.ts, standardised. Prints JSON.
Usage: python3 bench/probe_sklearn.py DATASET_DIR
"""
import json
import math
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler, normalize

REASONING_MODELS = ['o1', 'o3', 'o4', 'gpt-5', 'claude-opus', 'claude-3.7-sonnet-thinking',
                    'claude-sonnet-4-thinking', 'gemini-2.5-pro', 'gemini-3-pro', 'deepseek-r1']


def read(path):
    with open(path, encoding='utf8') as f:
        return [json.loads(line) for line in f if line.strip()]


def text_of(line):
    return line['messages'][-1]['content'].lower()


def signals(line):
    ti, tc = line['turnIndex'], line['turnCount']
    f = ti / tc
    pos = 'early' if f <= 1 / 3 else 'mid' if f <= 2 / 3 else 'late'
    tools = line['tools']
    ptd = line['promptTokenDelta']
    model = line['model'].lower()
    return [
        math.log1p(max(0, line['numRequests'])),
        math.log1p(max(0, line['turnDurationMs']) / 1000),
        len(set(tools)),
        math.log1p(len(tools)),
        math.copysign(math.log1p(abs(ptd)), ptd) if ptd else 0.0,
        1.0 if any(model.startswith(p) for p in REASONING_MODELS) else 0.0,
        math.log(max(1, tc)),
        math.log(max(1, ti)),
        f,
        1.0 if pos == 'early' else 0.0,
        1.0 if pos == 'mid' else 0.0,
        1.0 if pos == 'late' else 0.0,
    ]


def main():
    d = sys.argv[1]
    train = read(f'{d}/train.jsonl')
    test = read(f'{d}/validation.jsonl')
    y_tr = np.array([1 if l['label'] == 0 else 0 for l in train])
    y_te = np.array([1 if l['label'] == 0 else 0 for l in test])
    t0 = time.perf_counter()
    words = HashingVectorizer(n_features=2**18, analyzer='word', ngram_range=(1, 2),
                              token_pattern=r'(?u)\b\w+\b', alternate_sign=True, norm=None)
    chars = HashingVectorizer(n_features=2**18, analyzer='char', ngram_range=(3, 5),
                              alternate_sign=True, norm=None, lowercase=False)

    def damp(x):
        # Sublinear tf keeping the hashing sign: sign(v) * (1 + ln|v|), then L2 rows.
        x = x.tocsr()
        x.eliminate_zeros()
        x.data = np.sign(x.data) * (1 + np.log(np.abs(x.data)))
        return normalize(x)

    def feats(lines):
        texts = [text_of(l) for l in lines]
        w = damp(words.transform(texts))
        c = damp(chars.transform([' ' + t + ' ' for t in texts]))
        return sp.hstack([w, c]).tocsr() / math.sqrt(2)

    x_tr, x_te = feats(train), feats(test)
    clf = LogisticRegression(C=1.0, max_iter=1000)
    clf.fit(x_tr, y_tr)
    text_auc = roc_auc_score(y_te, clf.predict_proba(x_te)[:, 1])
    text_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    sc = StandardScaler()
    s_tr = sc.fit_transform(np.array([signals(l) for l in train]))
    s_te = sc.transform(np.array([signals(l) for l in test]))
    sclf = LogisticRegression(C=1.0, max_iter=1000)
    sclf.fit(s_tr, y_tr)
    sig_auc = roc_auc_score(y_te, sclf.predict_proba(s_te)[:, 1])
    print(json.dumps({
        'train': len(train), 'test': len(test), 'textAuc': text_auc, 'signalsAuc': sig_auc,
        'textSeconds': text_s, 'signalsSeconds': time.perf_counter() - t1,
    }))


main()
