from adfa import tr, va, at, dr, rep, np, re, collections  # noqa: F401
import torch, torch.nn as nn, numpy as np, sys
torch.manual_seed(int(sys.argv[2]) if len(sys.argv)>2 else 7); torch.set_num_threads(2)
C=int(sys.argv[1]) if len(sys.argv)>1 else 8
voc={}
for s in tr:
    for x in s: voc.setdefault(x,len(voc)+2)   # 0 pad, 1 unk
V=len(voc)+2
enc=lambda s:[voc.get(x,1) for x in s]
def windows(seqs):
    X=[];Y=[]
    for s in seqs:
        e=[0]*C+enc(s)
        for i in range(C,len(e)):
            X.append(e[i-C:i]);Y.append(e[i])
    return torch.tensor(X),torch.tensor(Y)
idx=np.random.RandomState(7).permutation(len(tr))
fit=[tr[i] for i in idx[:666]]; hold=[tr[i] for i in idx[666:]]
Xf,Yf=windows(fit); Xh,Yh=windows(hold)
m=nn.Sequential(nn.Embedding(V,32),nn.Flatten(),nn.Linear(32*C,256),nn.ReLU(),nn.Linear(256,256),nn.ReLU(),nn.Linear(256,V))
opt=torch.optim.Adam(m.parameters(),1e-3); lf=nn.CrossEntropyLoss()
best=1e9;bs=None;bad=0
for ep in range(15):
    m.train();p=torch.randperm(len(Xf))
    for i in range(0,len(p),512):
        b=p[i:i+512];opt.zero_grad();l=lf(m(Xf[b]),Yf[b]);l.backward();opt.step()
    m.eval()
    with torch.no_grad(): hl=lf(m(Xh),Yh).item()
    print(ep,hl,flush=True)
    if hl<best: best=hl;bs={k:v.clone() for k,v in m.state_dict().items()};bad=0
    else:
        bad+=1
        if bad>=2: break
m.load_state_dict(bs)
def nll(s):
    X,Y=windows([s])
    with torch.no_grad(): return nn.functional.cross_entropy(m(X),Y,reduction='none').numpy()
out={}
out['hold']=np.array([nll(s) for s in hold],dtype=object)
out['va']=np.array([nll(s) for s in va],dtype=object)
out['at']=np.array([nll(s) for f,s in at],dtype=object)
np.save(f'nll_c{C}_s{sys.argv[2] if len(sys.argv)>2 else 7}.npy',out,allow_pickle=True)
