# repl_continue(out_paths, rh): the second positional argument is the ReplHelper,
# as in the design document's date.
# anchor: fails -- 0.1.0 inserted out_rrefs as the second parameter
from os.path import join
from pylightnix import *

store_initialize()

def stage(m:Manager)->DRef:
  def _realize(b:Build)->None:
    with open(join(build_outpath(b),'x.txt'),'w') as f:
      f.write('auto')
  return mkdrv(m, mkconfig({'name':'manual', 'v':1}), match_only(), build_wrapper(_realize))

rh=repl_realize(instantiate(stage), force_interrupt=True)
b=repl_build(rh)
with open(join(build_outpath(b),'x.txt'),'w') as f:
  f.write('by hand')
rref=repl_continue(b.outpaths, rh)
assert rref is not None and repl_rref(rh)==rref
assert open(join(rref2path(rref),'x.txt')).read()=='by hand'
print('PASS')
