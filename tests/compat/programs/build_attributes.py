# Build objects as the design document's date had them: b.cattrs, b.buildtime,
# b.timeprefix, b.context, b.outpaths, b.dref.
# anchor: fails -- 0.1.0 dropped Build.cattrs and Build.buildtime (it has build_cattrs(b) only)
from os.path import join
from pylightnix import *

store_initialize()

def base(m:Manager)->DRef:
  return mkfile(m, Name('base'), b'41')

def stage(m:Manager)->DRef:
  def _config(dep:DRef)->Config:
    name = 'adder'
    src = [dep, 'base']
    delta = 1
    return mkconfig(locals())
  def _realize(b:Build)->None:
    assert b.cattrs.delta == 1
    assert b.cattrs is build_cattrs(b)
    assert b.buildtime is True
    assert isinstance(b.timeprefix, str) and parsetime(b.timeprefix) is not None
    assert isinstance(b.context, dict) and len(b.context)==1
    assert isdref(b.dref) and b.dref.endswith('-adder')
    assert b.outpaths == []
    o=build_outpath(b)
    assert b.outpaths == [o]
    v=int(open(build_path(b, b.cattrs.src)).read())
    with open(join(o,'sum.txt'),'w') as f:
      f.write(str(v+b.cattrs.delta))
  return mkdrv(m, _config(base(m)), match_only(), build_wrapper(_realize))

rref=realize(instantiate(stage))
assert open(join(rref2path(rref),'sum.txt')).read()=='42'

# BuildArgs keeps the original's fields, in its order
rh=repl_realize(instantiate(stage), force_interrupt=True)
ba=repl_buildargs()
assert list(ba._fields[:5])==['dref','cattrs','context','timeprefix','buildtime'], ba._fields
assert ba.cattrs.delta==1 and ba.buildtime is True
repl_cancel()
print('PASS')
