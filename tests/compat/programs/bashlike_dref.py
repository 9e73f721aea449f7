# The original's test_bashlike, as people use lsref on a derivation: its folder holds
# config.json and one entry per realization (two rebuilds of a deterministic stage are one).
from pylightnix import *

store_initialize()

def stage(m:Manager)->DRef:
  return mknode(m, sources={'a':1}, artifacts={'artifact':b'42'})

clo=instantiate(stage)
rref1=realize(clo, force_rebuild=[clo.dref])
rref2=realize(clo, force_rebuild=[clo.dref])
assert 'artifact' in lsref(rref1)
assert 'context.json' in lsref(rref1)
h1,_,_=unrref(rref1)
h2,_,_=unrref(rref2)
assert len(lsref(clo.dref))==2, lsref(clo.dref)
assert h1 in lsref(clo.dref) and h2 in lsref(clo.dref)
assert 'config.json' in lsref(clo.dref), lsref(clo.dref)
assert '42' in catref(rref1,['artifact'])
print('PASS')
