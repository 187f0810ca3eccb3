from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import torch, torch.nn as nn, numpy as np, sys, time
H=int(sys.argv[1]); L=int(sys.argv[2]); SEED=int(sys.argv[3])
torch.manual_seed(SEED); torch.set_num_threads(2)
voc={}
for s in tr:
    for x in s: voc.setdefault(x,len(voc)+2)
V=len(voc)+2
enc=lambda s:[1]+[voc.get(x,1) for x in s]   # 1 doubles as BOS/unk; fine for exp
idx=np.random.RandomState(7).permutation(len(tr))
fit=[enc(tr[i]) for i in idx[:666]]; hold=[enc(tr[i]) for i in idx[666:]]
SEG=200
def segs(seqs):
    out=[]
    for e in seqs:
        for i in range(0,len(e)-1,SEG):
            out.append(e[i:i+SEG+1])
    return out
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.e=nn.Embedding(V,48); s.g=nn.GRU(48,H,L,batch_first=True,dropout=0.1 if L>1 else 0); s.o=nn.Linear(H,V)
    def forward(s,x,h=None):
        y,h=s.g(s.e(x),h); return s.o(y),h
m=M(); opt=torch.optim.Adam(m.parameters(),2e-3)
def batchify(ss):
    n=max(len(x) for x in ss); X=torch.zeros(len(ss),n,dtype=torch.long)
    for i,x in enumerate(ss): X[i,:len(x)]=torch.tensor(x)
    return X
def loss_on(ss):
    X=batchify(ss); lo,_=m(X[:,:-1]); t=X[:,1:]
    l=nn.functional.cross_entropy(lo.reshape(-1,V),t.reshape(-1),reduction='none').reshape(t.shape)
    mask=(t!=0).float(); return (l*mask).sum()/mask.sum()
tr_s=segs(fit); ho_s=segs(hold); best=1e9; bad=0
for ep in range(20):
    t0=time.time(); m.train(); p=np.random.permutation(len(tr_s))
    for i in range(0,len(p),32):
        opt.zero_grad(); l=loss_on([tr_s[j] for j in p[i:i+32]]); l.backward(); nn.utils.clip_grad_norm_(m.parameters(),1.0); opt.step()
    m.eval()
    with torch.no_grad(): hl=np.mean([loss_on(ho_s[i:i+64]).item() for i in range(0,len(ho_s),64)])
    print(ep,round(hl,4),round(time.time()-t0,1),flush=True)
    if hl<best: best=hl; bs={k:v.clone() for k,v in m.state_dict().items()}; bad=0
    else:
        bad+=1
        if bad>=2: break
m.load_state_dict(bs); m.eval()
def nll(s):
    e=enc(s); X=torch.tensor([e])
    with torch.no_grad():
        lo,_=m(X[:,:-1]); return nn.functional.cross_entropy(lo[0],X[0,1:],reduction='none').numpy()
out={'va':np.array([nll(s) for s in va],dtype=object),'at':np.array([nll(s) for f,s in at],dtype=object)}
np.save(f'gru_h{H}_l{L}_s{SEED}.npy',out,allow_pickle=True)
print('done')
