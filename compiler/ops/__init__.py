"""One module per op family; importing them fills LOWERINGS."""
from . import attention, conv, dropout, elementwise, layout, logic, lora_switch, matmul, moe, movement, normalize, pointwise, pool, reduce, scan  # noqa: F401
from .common import LOWERINGS, Lowering, Step

__all__ = ["LOWERINGS", "Lowering", "Step"]
