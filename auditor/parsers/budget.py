"""One budget of work per audit, passed down to every bounded reader of hostile bytes.

A per-file limit bounds one file; a budget bounds the sum, so a hundred small bombs cost no more
than one. Counters are named (bytes decompressed, pickle opcodes, protobuf fields...); each reader
spends what it uses and stops with `BudgetExceeded` when a counter runs out. A `Budget` is shared
by reference: the scanners of one audit pass the same object down.

    budget = Budget(decompressed=1 << 30, opcodes=50_000_000)
    budget.spend("decompressed", len(chunk))     # raises BudgetExceeded past the cap
    budget.left("opcodes")
"""
from __future__ import annotations


class BudgetExceeded(Exception):
    def __init__(self, counter: str, cap: int) -> None:
        super().__init__(f"the audit's {counter} budget of {cap:,} is spent")
        self.counter = counter
        self.cap = cap


class Budget:
    """Named caps; `spend` subtracts and raises when a cap is passed. Unknown counters are unlimited."""

    def __init__(self, **caps: int) -> None:
        self.caps = dict(caps)
        self.spent = dict.fromkeys(caps, 0)

    def spend(self, counter: str, amount: int = 1) -> None:
        if counter not in self.caps:
            return
        self.spent[counter] += amount
        if self.spent[counter] > self.caps[counter]:
            raise BudgetExceeded(counter, self.caps[counter])

    def spend_quietly(self, counter: str, amount: int) -> None:
        """Record work already done (the reader enforced `left()` itself)."""
        if counter in self.caps:
            self.spent[counter] += amount

    def left(self, counter: str) -> int:
        if counter not in self.caps:
            return 1 << 62
        return max(0, self.caps[counter] - self.spent[counter])

    def exhausted(self, counter: str) -> bool:
        return counter in self.caps and self.spent[counter] >= self.caps[counter]


def unlimited() -> Budget:
    return Budget()
