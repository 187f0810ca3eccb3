import numpy as np, collections
from sklearn.metrics import roc_auc_score
from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
d=np.load('nll_c8_s7.npy',allow_pickle=True).item()
sn=np.array([x.mean() for x in d['va']]); sa=np.array([x.mean() for x in d['at']])
pct=np.array([(sn<v).mean() for v in sa])
fams=np.array([f for f,s in at])
for f in sorted(set(fams)):
    m=fams==f; print(f, m.sum(), 'median pct', np.median(pct[m]).round(3), 'below 30%', (pct[m]<0.3).sum())
low=np.where(pct<0.3)[0]
print('low count',len(low))
# what are low attack traces? print first 60 syscalls of several
for i in low[:8]:
    print(fams[i], len(at[i][1]), pct[i].round(3), at[i][1][:40])
# normal va top scorers
top=np.argsort(-sn)[:8]
for i in top: print('N', len(va[i]), sn[i].round(2), va[i][:40])
