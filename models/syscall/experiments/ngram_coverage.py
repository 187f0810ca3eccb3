from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
print(len(tr), len(va), len(at))
trs = set(tuple(s) for s in tr)
vas = set(tuple(s) for s in va)
same_tr = sum(tuple(s) in trs for f,s in at); same_va = sum(tuple(s) in vas for f,s in at)
print('attack identical to a training trace', same_tr, 'to a validation trace', same_va)
# n-gram coverage
def grams(s,n): return {tuple(s[i:i+n]) for i in range(len(s)-n+1)}
G6=set()
for s in tr: G6|=grams(s,6)
def unseen(s,n=6):
    g=[tuple(s[i:i+n]) for i in range(len(s)-n+1)]
    return sum(x not in G6 for x in g), len(g)
za=[unseen(s) for f,s in at]
print('attack traces with 0 unseen 6-grams', sum(u==0 for u,_ in za), 'len dist', np.percentile([len(s) for f,s in at],[5,25,50,75,95]))
print('normal va traces with 0 unseen', sum(unseen(s)[0]==0 for s in va)/len(va))
lens0=[len(s) for (f,s),(u,_) in zip(at,za) if u==0]
print('lens of zero-unseen attacks', sorted(lens0)[:50])
print(collections.Counter(f for (f,s),(u,_) in zip(at,za) if u==0))
