# What people type in an IPython console to look at realizations.
from os.path import join, islink, realpath
from tempfile import mkdtemp
from pylightnix import *

store_initialize()

def stage(m:Manager)->DRef:
  return mknode(m, sources={'version':1}, artifacts={'notes.txt':b'line1\nline2\n', 'w.bin':b'\x00'*10})

clo=instantiate(stage)
rref=realize(clo)
files=lsref(rref)
assert 'notes.txt' in files and 'w.bin' in files and 'context.json' in files, files
assert catref(rref,['notes.txt'])==['line1\n','line2\n']
rhashes=lsref(clo.dref)
assert rref[5:5+32] in rhashes, (rref, rhashes)
usage=du()
total,per_rref=usage[clo.dref]
assert per_rref[rref] >= 10+12 and total >= per_rref[rref], usage
d=mkdtemp()
link=mksymlink(rref, d, 'result')
assert islink(link) and realpath(link)==realpath(rref2path(rref))
rmref(rref)
assert list(store_rrefs_(clo.dref))==[]
rmref(clo.dref)
assert clo.dref not in list(store_drefs())
print('PASS')
