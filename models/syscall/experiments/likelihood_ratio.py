import numpy as np, collections, math
from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
d=np.load('nll_c8_s7.npy',allow_pickle=True).item()
idx=np.random.RandomState(7).permutation(len(tr)); fit=[tr[i] for i in idx[:666]]
def ngram_model(n, alpha=0.1):
    c=collections.Counter(); cc=collections.Counter(); V=400
    for s in fit:
        e=[-1]*(n-1)+s
        for i in range(n-1,len(e)):
            c[tuple(e[i-n+1:i+1])]+=1; cc[tuple(e[i-n+1:i])]+=1
    def nll(s):
        e=[-1]*(n-1)+s
        return np.array([-math.log((c[tuple(e[i-n+1:i+1])]+alpha)/(cc[tuple(e[i-n+1:i])]+alpha*V)) for i in range(n-1,len(e))])
    return nll
lmn=[x for x in d['va']]; lma=[x for x in d['at']]
for n in [1,2,3]:
    bg=ngram_model(n)
    bn=[bg(s) for s in va]; ba=[bg(s) for f,s in at]
    rep(f'{n}gram alone', np.array([x.mean() for x in bn]), np.array([x.mean() for x in ba]))
    for w in [0.5,1.0]:
        rep(f'lm - {w}*{n}gram', np.array([(a-w*b).mean() for a,b in zip(lmn,bn)]), np.array([(a-w*b).mean() for a,b in zip(lma,ba)]))
