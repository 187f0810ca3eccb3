# Sequence covering against the normal training corpus: matching statistics
# (longest substring ending at each call that occurs in training) via a
# suffix automaton, then trace scores from the covering.
from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import numpy as np, sys, math
class SAM:
    def __init__(s):
        s.nxt=[{}]; s.link=[-1]; s.len=[0]; s.last=0
    def add(s,c):
        cur=len(s.len); s.nxt.append({}); s.len.append(s.len[s.last]+1); s.link.append(0)
        p=s.last
        while p!=-1 and c not in s.nxt[p]:
            s.nxt[p][c]=cur; p=s.link[p]
        if p!=-1:
            q=s.nxt[p][c]
            if s.len[p]+1==s.len[q]: s.link[cur]=q
            else:
                cl=len(s.len); s.nxt.append(dict(s.nxt[q])); s.len.append(s.len[p]+1); s.link.append(s.link[q])
                while p!=-1 and s.nxt[p].get(c)==q:
                    s.nxt[p][c]=cl; p=s.link[p]
                s.link[q]=cl; s.link[cur]=cl
        s.last=cur
    def ms(s,seq):
        v=0; l=0; out=[]
        for c in seq:
            while v and c not in s.nxt[v]:
                v=s.link[v]; l=s.len[v]
            if c in s.nxt[v]: v=s.nxt[v][c]; l+=1
            else: l=0
            out.append(l)
        return np.array(out)
sam=SAM()
for i,t in enumerate(tr):
    for c in t: sam.add(c)
    sam.add(-1-i)   # unique separator: no match crosses traces
print('sam states',len(sam.len),flush=True)
def pieces(m):
    # greedy covering from the right end: each piece is the longest match ending there
    j=len(m)-1; n=0; lens=[]
    while j>=0:
        L=max(m[j],1); lens.append(L); j-=L; n+=1
    return np.array(lens)
Mn=[sam.ms(s) for s in va]; Ma=[sam.ms(s) for f,s in at]
np.save('ms.npy',{'va':np.array(Mn,dtype=object),'at':np.array(Ma,dtype=object)},allow_pickle=True)
aggs={
 'pieces per call': lambda m: len(pieces(m))/len(m),
 'mean -log(piece len) per call': lambda m: np.mean(-np.log(np.repeat(pieces(m),pieces(m)))),
 'mean -log ms': lambda m: np.mean(-np.log(np.maximum(m,1))),
 'mean 1/ms': lambda m: np.mean(1/np.maximum(m,1)),
 'frac ms<6': lambda m: np.mean(m<6),
 'frac ms<10': lambda m: np.mean(m<10),
 'frac ms<20': lambda m: np.mean(m<20),
 'mean -log min(ms,50)': lambda m: np.mean(-np.log(np.clip(m,1,50))),
}
for k,f in aggs.items():
    rep(k,np.array([f(m) for m in Mn]),np.array([f(m) for m in Ma]))
