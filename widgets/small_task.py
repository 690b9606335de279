"""Only for `widgets/exercises/gradient_descent.py`, which still imports `tiny_mlp` from here.

The small task's parts have their homes in cnnlab: the network is `cnnlab.models.tiny_mlp`, the data
`cnnlab.data.small_fashion_mnist` and `cnnlab.data.downsample_flat`, the thread limit
`cnnlab.bench.threads.one_blas_thread`. Delete this module once that import names `cnnlab.models`.
"""
from cnnlab.models import tiny_mlp

__all__ = ["tiny_mlp"]
