# A realizer written by hand (no build_wrapper), several outputs, and the matchers.
from os.path import join
from typing import List
from pylightnix import *

store_initialize()

def scores(m:Manager)->DRef:
  def _realize(dref:DRef, context:Context, rarg=None)->List[Path]:
    b=mkbuild(dref, context, buildtime=True)
    outs=build_setoutpaths(b, 3)
    for i,o in enumerate(outs):
      with open(join(o,'score.txt'),'w') as f:
        f.write(str([0.5, 0.9, 0.7][i]))
    return outs
  return mkdrv(m, mkconfig({'name':'scores'}), match_best('score.txt'), _realize)

def all_scores(m:Manager)->DRef:
  return mkdrv(m, mkconfig({'name':'scores'}), match_all(), lambda d,c,r=None: [])

rref=realize(instantiate(scores))
assert open(join(rref2path(rref),'score.txt')).read()=='0.9'
assert len(list(store_rrefs_(rref2dref(rref))))==3
assert len(realizeMany(instantiate(all_scores)))==3
assert store_buildtime(rref) is not None and parsetime(store_buildtime(rref)) is not None
print('PASS')
