"""The original's ``pylightnix.core`` import path: a re-export of the functions it
held that this project has (see docs/compatibility.md). Nothing is defined here."""
# flake8: noqa: F401
from pylightnix.bashlike import mksymlink
from pylightnix.build import (build_cattrs, build_config, build_context, build_deref, build_deref_, build_name,
                              build_outpath, build_outpaths, build_path, build_paths, build_setoutpaths,
                              build_wrapper, build_wrapper_, mkbuild, mkbuildargs)
from pylightnix.config import (assert_valid_config, claim, config_cattrs, config_deps, config_dict, config_hash,
                               config_name, config_serialize, mkconfig, promise)
from pylightnix.manager import instantiate, instantiate_, mkdrv
from pylightnix.matchers import (best, exact, latest, match, match_all, match_best, match_latest, match_n,
                                 match_only, match_some, texthash)
from pylightnix.realize import realize, realizeMany, realizeSeq
from pylightnix.refs import (assert_valid_dref, assert_valid_hash, assert_valid_name, assert_valid_rref, mkdref,
                             mkname, mkrefpath, mkrref, rref2dref, undref, unrref)
from pylightnix.store import (rref2path, store_buildtime, store_cattrs, store_cfgpath, store_config, store_config_,
                              store_context, store_deepdeps, store_deps, store_deref, store_deref_, store_dref2path,
                              store_drefs, store_gc, store_initialize, store_instantiate, store_realize, store_rrefs,
                              store_rrefs_)
from pylightnix.types import mkcontext
