# A deterministic stage gets the same RRef in two empty stores, build times
# included: files whose names start with '_' (like __buildtime__.txt) are not hashed.
import sys
from os.path import join, exists
from tempfile import mkdtemp
from pylightnix import *

def stage(m:Manager)->DRef:
  def _realize(b:Build)->None:
    o=build_outpath(b)
    with open(join(o,'model.txt'),'w') as f:
      f.write('weights 1 2 3')
    with open(join(o,'_log.txt'),'w') as f:
      f.write(f'built at {timestring()}')
  return mkdrv(m, mkconfig({'name':'model','seed':7}), match_latest(), build_wrapper(_realize, buildtime=True))

rrefs=[]
for i in range(2):
  root=mkdtemp()
  store_initialize(custom_store=join(root,'store'), custom_tmp=join(root,'tmp'))
  rrefs.append(realize(instantiate(stage)))
  assert exists(join(rref2path(rrefs[-1]),'__buildtime__.txt'))
assert rrefs[0]==rrefs[1], rrefs

clo=instantiate(stage)
again=realize(clo, force_rebuild=True)
assert again==rrefs[1], (again, rrefs)
assert len(list(store_rrefs_(clo.dref)))==1
print('PASS')
