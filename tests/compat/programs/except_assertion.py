# Old code catches AssertionError around misuse; that keeps working (also under python -O).
from pylightnix import *

store_initialize()

def caught(f)->bool:
  try:
    f()
  except AssertionError:
    return True
  return False

def badname(m:Manager)->DRef:
  return mkdrv(m, mkconfig({'name':'has space'}), match_only(), build_wrapper(lambda b: None))

def two(m:Manager)->DRef:
  def _realize(b:Build)->None:
    build_setoutpaths(b, 2)
  return mkdrv(m, mkconfig({'name':'two'}), match_all(), build_wrapper(_realize))

def user_error(m:Manager)->DRef:
  def _realize(b:Build)->None:
    raise KeyError('mine')
  return mkdrv(m, mkconfig({'name':'usererror'}), match_only(), build_wrapper(_realize))

assert caught(lambda: instantiate(badname))
assert caught(lambda: undref('not-a-ref'))
assert caught(lambda: unrref(DRef('dref:0123')))
assert caught(lambda: realize(instantiate(two)))           # two outputs, realize wants one
assert caught(lambda: assert_valid_rref('dref:xyz'))
assert caught(lambda: assert_valid_hash('abc'))
try:
  realize(instantiate(user_error))
  raise RuntimeError('not reached')
except KeyError as e:
  assert e.args==('mine',)                                 # the user's own exception is unchanged
print('PASS')
