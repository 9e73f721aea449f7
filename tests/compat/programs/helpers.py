# Small helpers of the original: contexts, refpaths, dict traversal, validation, time, log folders.
import os
from os.path import join, islink, isdir
from tempfile import mkdtemp
from hashlib import sha256
from time import time
from pylightnix import *

store_initialize()

dref=instantiate(mkfile, Name('h'), b'1').dref
rref=realize(instantiate(mkfile, Name('h'), b'1'))

assert mkcontext()=={}
assert mkrefpath(dref, ['a','b.txt'])==[dref,'a','b.txt']
assert_valid_dref(dref); assert_valid_rref(rref)
assert_valid_hash(sha256(b'x').hexdigest())
c=mkconfig({'name':'v', 'x':[1,{'y':2}]})
assert assert_valid_config(c) is c

d={'a':1, 'b':[2,{'c':3}], 'dep':dref, 'out':rref}
traverse_dict(d, lambda k,v: v*10 if isinstance(v,int) else v)
assert d['a']==10 and d['b'][0]==20 and d['b'][1]['c']==30, d
drefs,rrefs=scanref_dict(d)
assert drefs==[dref] and rrefs==[rref], (drefs,rrefs)

t=timestring()
assert abs(parsetime(t)-time()) < 60, (t, parsetime(t))
assert parsetime(timestring(sec=1000.5))==1000.5
assert parsetime('garbage') is None

root=mkdtemp()
p=mklogdir('train', root, subdirs=['tb'])
assert isdir(join(p,'tb'))
assert islink(join(root,'_train_latest')) and os.path.realpath(join(root,'_train_latest'))==os.path.realpath(p)
print('PASS')
