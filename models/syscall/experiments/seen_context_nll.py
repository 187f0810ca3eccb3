import numpy as np, collections, math
from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
d=np.load('nll_c8_s7.npy',allow_pickle=True).item()
idx=np.random.RandomState(7).permutation(len(tr)); fit=[tr[i] for i in idx[:666]]
for k in [2,3,4,6,8]:
    G=set()
    for s in fit:
        e=[-1]*8+s
        for i in range(8,len(e)): G.add(tuple(e[i-k:i]))
    def seen(s):
        e=[-1]*8+s
        return np.array([tuple(e[i-k:i]) in G for i in range(8,len(e))])
    sv=[seen(s) for s in va]; sa_=[seen(s) for f,s in at]
    f=lambda x,m: x[m].mean() if m.any() else 0.0
    rep(f'k{k} nll|seen ctx', [f(x,m) for x,m in zip(d['va'],sv)], [f(x,m) for x,m in zip(d['at'],sa_)])
    rep(f'k{k} frac unseen ctx', [1-m.mean() for m in sv], [1-m.mean() for m in sa_])
