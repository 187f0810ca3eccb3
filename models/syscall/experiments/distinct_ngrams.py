from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import numpy as np
for fn in ['nll_c8_s7.npy','gru_h256_l2_s1.npy']:
    d=np.load(fn,allow_pickle=True).item()
    print(fn, len(d['va'][0]), len(va[0]))
    for K in [1,3,6,9,12,20]:
        def sc(seq,nll):
            seen={}
            for i in range(len(nll)):
                k=tuple(seq[max(0,i-K+1):i+1])
                if k not in seen: seen[k]=nll[i]
            v=np.array(list(seen.values())); return v.mean()
        sn=np.array([sc(s,x) for s,x in zip(va,d['va'])]); sa=np.array([sc(s,x) for (f,s),x in zip(at,d['at'])])
        rep(f'{fn[:6]} unique {K}-grams mean',sn,sa)
