"""One module per op family; importing them fills LOWERINGS."""
from . import attention, conv, elementwise, layout, logic, matmul, movement, normalize, pointwise, pool, reduce, scan  # noqa: F401
from .common import LOWERINGS, Lowering, Step

__all__ = ["LOWERINGS", "Lowering", "Step"]
