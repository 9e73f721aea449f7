# Name is a str subclass and works wherever a str does.
from os.path import join
from pylightnix import *

store_initialize()

def stage(m:Manager)->DRef:
  return mknode(m, sources={Name('kind'):Name('data')},
                artifacts={Name('a.txt'):b'A', Name('b.txt'):b'B'}, name=Name('two_files'))

rref=realize(instantiate(stage))
assert open(join(rref2path(rref),'a.txt')).read()=='A'
assert store_cattrs(rref).kind=='data'
rref2=realize(instantiate(mkfile, Name('foo'), b'bar', Name('foo.txt')))
assert open(join(rref2path(rref2),'foo.txt')).read()=='bar'
assert isinstance(mkname('ok'), str)
print('PASS')
