"""pylightnix: immutable, cached pipeline stages with build breakpoints.

The public API is the one of the design document (``REPL-demo.md``) plus its
companions; see README.md. Data flows one way::

    stage functions -> instantiate -> Closure -> engine (emits events) -> frontends
"""
from pylightnix.types import (Path, Hash, HashPart, Name, DRef, RRef, RefPath, PromisePath, Context, Matcher,
                              Realizer, RealizeArg, InstantiateArg, Key, BuildArgs, mkcontext)
from pylightnix.errors import (PylightnixError, ConfigError, RefError, ClosureError, StoreError, BuildError,
                               PromiseError, MatcherError, FetchError, ChecksumError, UnsafeArchiveError,
                               ReplError, BuildCancelled, ExecutorError)
from pylightnix.errors import AttachInfoError, AttachError, ChannelError, PauseNotServed
from pylightnix.errors import SettingsError, ExecutorSettingsError, FrontendError
from pylightnix.refs import (mkname, mkdref, mkrref, undref, unrref, rref2dref, is_dref, is_rref, isdref, isrref,
                             mkrefpath, traverse_dict, scanref_dict, assert_valid_name, assert_valid_dref,
                             assert_valid_rref, assert_valid_hash)
from pylightnix.config import (Config, RConfig, ConfigAttrs, mkconfig, config_dict, config_name, config_hash,
                               config_serialize, config_deps, config_cattrs, promise, claim, assert_valid_config,
                               PYLIGHTNIX_PROMISE_TAG, PYLIGHTNIX_CLAIM_TAG)
from pylightnix.store import (store_initialize, store_dref2path, rref2path, store_cfgpath, store_config,
                              store_config_, store_cattrs, store_context, store_deref, store_deref_, store_drefs,
                              store_rrefs, store_rrefs_, store_deps, store_deepdeps, store_gc, store_remove,
                              store_realize, store_instantiate, store_buildtime, store_verify, store_leftovers,
                              dirhash)
from pylightnix.store import SpecialFileError
from pylightnix.build import (Build, mkbuildargs, mkbuild, build_wrapper, build_wrapper_, build_config,
                              build_context, build_cattrs, build_name, build_outpath, build_outpaths,
                              build_setoutpaths, build_path, build_paths, build_deref, build_deref_, timestring,
                              parsetime)
from pylightnix.manager import Manager, Derivation, Closure, mkdrv, instantiate, instantiate_
from pylightnix.matchers import (match, match_n, match_best, match_latest, match_all, match_some, match_only,
                                 latest, best, exact, texthash)
from pylightnix.realize import realize, realizeMany, realizeSeq, RealizeSeqGen
from pylightnix.repl import (ReplHelper, repl_realize, repl_buildargs, repl_build, repl_continue,
                             repl_continueMany, repl_continueBuild, repl_cancel, repl_cancelBuild, repl_rref,
                             repl_rrefs)
from pylightnix.trivial import mknode, mkfile
from pylightnix.fetch import fetchurl, fetchlocal
from pylightnix.files import tryread, trywrite, mklogdir, forcelink
from pylightnix.bashlike import lsref, catref, rmref, shell, shellref, du, mksymlink
from pylightnix.inplace import instantiate_inplace, realize_inplace
from pylightnix.breakpoints import (set_build_breakpoints, add_build_breakpoint, build_breakpoints,
                                    set_break_on_failure)
from pylightnix.events import BuildPause, Frontend, add_frontend, remove_frontend, current_pause

Stage = object  # a stage is any callable taking a Manager first and returning a DRef


def _terminal_frontend():  # type: ignore[no-untyped-def]
    """Pauses with no frontend registered go to the terminal IPython fallback."""
    from pylightnix.terminal import default_frontend
    return default_frontend()


from pylightnix import events as _events  # noqa: E402
from pylightnix import progress as _progress  # noqa: E402

_events.set_default_frontend(_terminal_frontend)
_progress.install()

__version__ = "0.2.0"
