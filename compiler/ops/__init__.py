"""One module per op family; importing them fills LOWERINGS."""
from . import attention, conv, elementwise, matmul, movement, normalize, pool, reduce  # noqa: F401
from .common import LOWERINGS, Lowering, Step

__all__ = ["LOWERINGS", "Lowering", "Step"]
