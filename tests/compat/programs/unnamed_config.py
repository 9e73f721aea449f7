# A config without a 'name': the original names its derivation 'unnamed'.
from os.path import join
from pylightnix import *

store_initialize()

def stage(m:Manager)->DRef:
  def _config()->Config:
    learning_rate = 0.1
    epochs = 3
    return mkconfig(locals())
  def _realize(b:Build)->None:
    with open(join(build_outpath(b),'out.txt'),'w') as f:
      f.write(str(build_cattrs(b).epochs))
  return mkdrv(m, _config(), match_only(), build_wrapper(_realize))

clo=instantiate(stage)
assert clo.dref.endswith('-unnamed'), clo.dref
assert config_name(store_config(clo.dref))=='unnamed'
rref=realize(clo)
assert rref.endswith('-unnamed'), rref
assert open(join(rref2path(rref),'out.txt')).read()=='3'
assert realize(instantiate(stage))==rref
print('PASS')
