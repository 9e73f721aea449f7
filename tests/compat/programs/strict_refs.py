# References, names and hashes are matched on the whole string.
# anchor: fails -- 0.1.0 only checks the 'dref:'/'rref:' prefix, so a trailing newline passes
from pylightnix import *

store_initialize()

def refused(f)->bool:
  try:
    f()
  except AssertionError:
    return True
  return False

dref=instantiate(mkfile, Name('x'), b'1').dref
assert refused(lambda: undref(DRef(dref+'\n')))
assert refused(lambda: assert_valid_dref(dref+'\n'))
assert refused(lambda: mkname('foo\n'))
assert refused(lambda: assert_valid_hash('a'*64+'\n'))
assert refused(lambda: instantiate(lambda m: mkdrv(m, mkconfig({'name':'foo\n'}), match_only(),
                                                    build_wrapper(lambda b: None))))
assert refused(lambda: assert_valid_rref('rref:xyz'))
assert not isdref(dref+'\n') and isdref(dref)
print('PASS')
