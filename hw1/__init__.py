"""hw1: deep vs shallow networks, optimization and generalization, trained over seeds at once.

The public, cached API (`hw1.api`): `dnn`, `cnn` (architectures) and `fit_target`, `fit_mnist`
(training, one cache entry per seed). `import hw1` stays light: they load on first use.
"""

from .memory import pin_mmap_threshold

__all__ = ["dnn", "cnn", "fit_target", "fit_mnist"]

pin_mmap_threshold()  # flat memory over long runs (hw1.memory says why)


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'hw1' has no attribute {name!r}")
