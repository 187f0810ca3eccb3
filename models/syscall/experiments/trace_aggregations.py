import numpy as np, sys
from sklearn.metrics import roc_auc_score
from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
d=np.load(sys.argv[1],allow_pickle=True).item()
va_n=d['va']; at_n=d['at']; ho=d['hold']
fams=[f for f,s in at]
def rep(name,fn):
    sn=np.array([fn(x) for x in va_n]); sa=np.array([fn(x) for x in at_n])
    y=np.r_[np.zeros(len(sn)),np.ones(len(sa))]
    print(f"{name:30s} auc {roc_auc_score(y,np.r_[sn,sa]):.3f} dr1 {dr(sn,sa,.01):.3f} dr5 {dr(sn,sa,.05):.3f} dr10 {dr(sn,sa,.10):.3f}")
    return sn,sa
rep('mean', lambda x: x.mean())
rep('mean s/(1+s)', lambda x: (x/(1+x)).mean())
for k in [1,3,10,30]:
    rep(f'top{k} mean', lambda x: np.sort(x)[-k:].mean())
for t in [2,4,6,8,10]:
    rep(f'frac>{t}', lambda x: (x>t).mean())
    rep(f'count>{t}', lambda x: (x>t).sum())
rep('len', lambda x: len(x))
