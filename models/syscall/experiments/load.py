import zipfile, re, collections, numpy as np
z = zipfile.ZipFile('/work/shared/datasets/adfa-ld/ADFA-LD.zip')
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
