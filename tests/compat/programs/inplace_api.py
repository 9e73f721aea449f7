# instantiate_inplace/realize_inplace: one global Manager, for REPLs and notebooks.
from os.path import join
from pylightnix import *

store_initialize()

n1:DRef=instantiate_inplace(mkfile, Name('greeting'), b'hello')

def shout(m:Manager, src:DRef)->DRef:
  def _config()->Config:
    name = 'shout'
    path = [src, 'greeting']
    return mkconfig(locals())
  def _realize(b:Build)->None:
    c=build_cattrs(b)
    with open(join(build_outpath(b),'out.txt'),'w') as f:
      f.write(open(build_path(b,c.path)).read().upper())
  return mkdrv(m, _config(), match_only(), build_wrapper(_realize))

n2:DRef=instantiate_inplace(shout, n1)
rref:RRef=realize_inplace(n2)
assert open(join(rref2path(rref),'out.txt')).read()=='HELLO'
assert realize_inplace(n2)==rref
assert isrref(realize_inplace(n1))
print('PASS')
