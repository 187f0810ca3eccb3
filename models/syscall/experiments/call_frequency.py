from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM
from sklearn.decomposition import TruncatedSVD
from sklearn.neighbors import NearestNeighbors
doc=lambda s:' '.join('s%d'%x for x in s)
d=np.load('nll_c8_s7.npy',allow_pickle=True).item()
lmn=np.array([x.mean() for x in d['va']]); lma=np.array([x.mean() for x in d['at']])
for ng in [(1,1),(1,2),(1,3)]:
    v=TfidfVectorizer(ngram_range=ng,token_pattern=r'\S+',sublinear_tf=True).fit([doc(s) for s in tr])
    Xt=v.transform([doc(s) for s in tr]); Xn=v.transform([doc(s) for s in va]); Xa=v.transform([doc(s) for f,s in at])
    for k in [1,5]:
        nn=NearestNeighbors(n_neighbors=k,metric='cosine').fit(Xt)
        sn=nn.kneighbors(Xn)[0].mean(1); sa=nn.kneighbors(Xa)[0].mean(1)
        rep(f'knn{k} {ng}',sn,sa)
    svd=TruncatedSVD(50,random_state=0).fit(Xt)
    Zt,Zn,Za=svd.transform(Xt),svd.transform(Xn),svd.transform(Xa)
    iso=IsolationForest(n_estimators=300,random_state=0).fit(Zt)
    rep(f'iforest {ng}',-iso.score_samples(Zn),-iso.score_samples(Za))
    oc=OneClassSVM(gamma='scale',nu=0.05).fit(Zt)
    sn,sa=-oc.score_samples(Zn),-oc.score_samples(Za); rep(f'ocsvm {ng}',sn,sa)
    # z-ensemble with lm (normalization from normal validation, exploratory)
    nn=NearestNeighbors(n_neighbors=1,metric='cosine').fit(Xt); kn=nn.kneighbors(Xn)[0][:,0]; ka=nn.kneighbors(Xa)[0][:,0]
    z=lambda a,b,r: ((a-r.mean())/r.std(),(b-r.mean())/r.std())
    a1,b1=z(lmn,lma,lmn); a2,b2=z(kn,ka,kn)
    rep(f'lm + knn1 {ng}',a1+a2,b1+b2)
