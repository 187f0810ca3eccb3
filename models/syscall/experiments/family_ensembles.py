from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import numpy as np, itertools
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors
S={}
d=np.load('nll_c8_s7.npy',allow_pickle=True).item()
S['lm']=(np.array([x.mean() for x in d['va']]),np.array([x.mean() for x in d['at']]))
g=np.load('gru_h256_l2_s1.npy',allow_pickle=True).item()
S['gru']=(np.array([x.mean() for x in g['va']]),np.array([x.mean() for x in g['at']]))
m=np.load('ms.npy',allow_pickle=True).item()
f=lambda x: np.mean(1/np.maximum(x,1))
S['cover']=(np.array([f(x) for x in m['va']]),np.array([f(x) for x in m['at']]))
doc=lambda s:' '.join('s%d'%x for x in s)
v=TfidfVectorizer(token_pattern=r'\S+',sublinear_tf=True).fit([doc(s) for s in tr])
nn=NearestNeighbors(n_neighbors=1,metric='cosine').fit(v.transform([doc(s) for s in tr]))
S['knn']=(nn.kneighbors(v.transform([doc(s) for s in va]))[0][:,0],nn.kneighbors(v.transform([doc(s) for f,s in at]))[0][:,0])
def z(a,b): 
    mu,sd=a.mean(),a.std(); return (a-mu)/sd,(b-mu)/sd
def r(a,b):
    allv=np.r_[a,b]; rr=np.argsort(np.argsort(allv))/len(allv); return rr[:len(a)],rr[len(a):]
for k in S: rep(k,*S[k])
for n in [2,3,4]:
    for combo in itertools.combinations(S,n):
        zs=[z(*S[c]) for c in combo]
        rep('z '+'+'.join(combo),sum(x[0] for x in zs),sum(x[1] for x in zs))
        zs=[r(*S[c]) for c in combo]
        rep('rank '+'+'.join(combo),sum(x[0] for x in zs),sum(x[1] for x in zs))
        rep('max-rank '+'+'.join(combo),np.max([x[0] for x in zs],0),np.max([x[1] for x in zs],0))
