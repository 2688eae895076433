"""The reference lab's mutants, one module per stage they break (see harness.model.mutant).

No stage module imports them: a stage's key hashes the sources of its own modules only, so
declaring or editing a mutant rebuilds nothing. stages/__init__.py attaches each module's
mutants to its stage.
"""

from stages.mutants import apps, gw, pas, rhfs, web

__all__ = ["apps", "gw", "pas", "rhfs", "web"]
