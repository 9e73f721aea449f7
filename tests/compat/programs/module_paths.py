# The original's import paths.
from pylightnix.core import (mkconfig, mkdrv, instantiate, realize, realizeMany, build_wrapper, build_outpath,
    build_cattrs, build_path, store_initialize, rref2path, store_config, store_rrefs_, match_only, match_latest,
    mkrefpath, mksymlink, assert_valid_config, assert_valid_dref, assert_valid_rref, assert_valid_hash, mkcontext,
    config_name, store_deref, store_context, mkbuild)
from pylightnix.types import DRef, RRef, Name, Path, Build, Manager, Closure, Config, BuildArgs, Context, Stage
from pylightnix.utils import (timestring, parsetime, mklogdir, traverse_dict, scanref_dict, isdref, isrref,
    tryread, trywrite, dirhash, forcelink)
from pylightnix.repl import (repl_realize, repl_build, repl_buildargs, repl_continue, repl_continueBuild,
    repl_cancel, repl_rref, ReplHelper)
from pylightnix.stages import mknode, mkfile, fetchurl, fetchlocal
from pylightnix.stages.trivial import mknode, mkfile
from pylightnix.stages.fetch import fetchurl, fetchlocal
from pylightnix.bashlike import lsref, catref, rmref, shell, shellref, du
from pylightnix.inplace import instantiate_inplace, realize_inplace
import pylightnix.core, pylightnix.stages, pylightnix.types, pylightnix.utils, pylightnix.repl
from pylightnix.types import *
from pylightnix.core import *
from pylightnix.utils import *

store_initialize()
rref=realize(instantiate(mkfile, Name('f'), b'1'))
assert isrref(rref) and lsref(rref)
print('PASS')
