"""ADFA-LD traces and the metrics every experiment reports.

Imported by the experiment scripts (`from adfa import tr, va, at, dr, rep`).
The archive is $ADFA_LD, else ADFA-LD.zip in the datasets folder beside the
repository (../shared/datasets/adfa-ld/ from the repository's parent)."""
import collections
import os
import re
import zipfile

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ARCHIVE = os.environ.get("ADFA_LD") or os.path.join(
    os.path.dirname(_REPO), "shared", "datasets", "adfa-ld", "ADFA-LD.zip")
z = zipfile.ZipFile(ARCHIVE)
tr, va, at = [], [], []
for n in z.namelist():
    if not n.endswith('.txt'): continue
    try: seq = [int(x) for x in z.read(n).split()]
    except ValueError: print("skip", n); continue
    if 'Training_Data_Master' in n: tr.append(seq)
    elif 'Validation_Data_Master' in n: va.append(seq)
    elif 'Attack_Data_Master' in n:
        fam = re.search(r'Attack_Data_Master/([A-Za-z_]+?)_\d+/', n).group(1)
        at.append((fam, seq))

def dr(sn, sa, fpr):
    """Detection rate at a threshold flagging `fpr` of the normal scores."""
    t = np.quantile(sn, 1 - fpr); return (sa > t).mean()
def rep(name, sn, sa):
    """Prints ROC AUC and DR at 1/5/10 % FPR of normal vs attack scores."""
    from sklearn.metrics import roc_auc_score
    y = np.r_[np.zeros(len(sn)), np.ones(len(sa))]
    print(f"{name:40s} auc {roc_auc_score(y, np.r_[sn, sa]):.3f} dr1 {dr(sn, sa, .01):.3f} "
          f"dr5 {dr(sn, sa, .05):.3f} dr10 {dr(sn, sa, .10):.3f}", flush=True)
