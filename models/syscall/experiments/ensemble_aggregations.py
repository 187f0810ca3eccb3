# Score a per-call NLL file (va/at arrays of per-trace NLL vectors) on the
# standard protocol with a few trace aggregations; optional second file to
# rank-average with (an ensemble).
import numpy as np, sys
from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
fams=[f for f,s in at]
aggs={'mean':lambda x:x.mean(),'mean s/(1+s)':lambda x:(x/(1+x)).mean(),
      'top10 mean':lambda x:np.sort(x)[-10:].mean(),'frac>6':lambda x:(x>6).mean()}
files=sys.argv[1:]
S={}
for f in files:
    d=np.load(f,allow_pickle=True).item()
    for a,fn in aggs.items():
        sn=np.array([fn(x) for x in d['va']]); sa=np.array([fn(x) for x in d['at']])
        rep(f'{f[:18]} {a}',sn,sa); S[(f,a)]=(sn,sa)
if len(files)>1:
    def rank(sn,sa):
        allv=np.r_[sn,sa]; r=np.argsort(np.argsort(allv))/len(allv); return r[:len(sn)],r[len(sn):]
    rs=[rank(*S[(f,'mean')]) for f in files]
    rep('rank-mean ensemble',np.mean([r[0] for r in rs],0),np.mean([r[1] for r in rs],0))
    zs=[]
    for f in files:
        sn,sa=S[(f,'mean')]; m,s=sn.mean(),sn.std(); zs.append(((sn-m)/s,(sa-m)/s))
    rep('z-mean ensemble',np.mean([z[0] for z in zs],0),np.mean([z[1] for z in zs],0))
