"""Which of a merchant's events one connection has sent (pure: no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

# PostgreSQL: at most this many sent-but-unsettled seqs are remembered per connection.
MAX_UNSETTLED = 10_000


@dataclass
class StreamCursor:
    """Which of a merchant's events one connection has sent.

    Every event with `seq <= floor` is settled: sent, or older than what the connection was asked for.
    Seqs above the floor that were sent are kept with the time they were sent until `settle_s` has
    passed; then any older seq still unseen is taken to be rolled back and the floor moves up.
    With `settle_s == 0` (SQLite commits in seq order) the floor simply follows the last seq sent.
    """

    floor: int = 0
    high: int = 0
    settle_s: float = 0.0
    sent: dict[int, float] = field(default_factory=dict)

    @classmethod
    def at(cls, seq: int, settle_s: float = 0.0) -> StreamCursor:
        return cls(floor=seq, high=seq, settle_s=settle_s)

    def reset(self, seq: int) -> None:
        """Start again after `seq` (a `resume`)."""
        self.floor = self.high = seq
        self.sent.clear()

    def mark(self, seq: int, now: float) -> bool:
        """Record `seq` as sent; False if it was sent (or settled) already."""
        if seq <= self.floor or seq in self.sent or (self.settle_s <= 0 and seq <= self.high):
            return False
        if self.settle_s > 0:
            self.sent[seq] = now
        self.high = max(self.high, seq)
        return True

    def settle(self, now: float) -> None:
        if self.settle_s <= 0:
            self.floor = self.high
            return
        ripe = [s for s, at in self.sent.items() if now - at >= self.settle_s]
        if len(self.sent) - len(ripe) > MAX_UNSETTLED:
            ripe.append(sorted(self.sent)[len(self.sent) - MAX_UNSETTLED])
        if ripe:
            self.floor = max(self.floor, *ripe)
            self.sent = {s: at for s, at in self.sent.items() if s > self.floor}

    def missing(self, seqs: list[int]) -> list[int]:
        """Of the seqs now visible below `high`, those never sent (late commits)."""
        return [s for s in seqs if self.floor < s < self.high and s not in self.sent]

    @property
    def unsettled(self) -> bool:
        return self.floor < self.high
