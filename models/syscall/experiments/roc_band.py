from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import numpy as np, collections
d=np.load('nll_c8_s7.npy',allow_pickle=True).item()
sn=np.array([x.mean() for x in d['va']]); sa=np.array([x.mean() for x in d['at']])
q=np.quantile(sn,[0.75,0.9])
print('normal q75,q90',q)
mid_a=[i for i in range(len(sa)) if q[0]<sa[i]<=q[1]]
mid_n=[i for i in range(len(sn)) if q[0]<sn[i]<=q[1]]
print('attacks in band',len(mid_a),'of',len(sa),' normals',len(mid_n))
print('families in band',collections.Counter(at[i][0] for i in mid_a))
def sig(s): return tuple(s[:12])
ca=collections.Counter(sig(at[i][1]) for i in mid_a); cn=collections.Counter(sig(va[i]) for i in mid_n)
print('top attack prefixes', ca.most_common(5))
print('top normal prefixes', cn.most_common(5))
la=[len(at[i][1]) for i in mid_a]; ln=[len(va[i]) for i in mid_n]
print('len med attack',np.median(la),'normal',np.median(ln))
# top unigrams difference
ua=collections.Counter(c for i in mid_a for c in at[i][1]); un=collections.Counter(c for i in mid_n for c in va[i])
ta=sum(ua.values()); tn=sum(un.values())
diff=sorted(set(ua)|set(un), key=lambda c: -(ua[c]/ta-un[c]/tn))
print('over-represented in attacks', [(c, round(ua[c]/ta,3), round(un[c]/tn,3)) for c in diff[:8]])
print('over-represented in normals', [(c, round(ua[c]/ta,3), round(un[c]/tn,3)) for c in diff[-8:]])
