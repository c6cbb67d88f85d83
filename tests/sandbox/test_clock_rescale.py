"""SandboxClock.rescale: a benchmark loads a backlog at one pace and measures at another; sandbox time (and with it
every usage plan's bucket) goes on without a jump."""

import pytest

from erpsync.sandbox.core import SandboxClock, TokenBucket


def test_rescaling_keeps_sandbox_time_where_it_is_and_changes_its_pace():
    clock = SandboxClock(time_scale=1)
    clock.advance(50)
    bucket = TokenBucket(rate=0.01, burst=1, clock=clock)  # one token per 100 sandbox seconds
    assert bucket.try_take()
    before = clock.seconds()
    clock.rescale(0.001)  # a thousand real seconds per sandbox second from now on
    after = clock.seconds()
    assert clock.time_scale == 0.001
    assert before <= after < before + 100  # not reset, not stretched back over the time already run
    assert after >= 50  # the manual advance is kept
    assert not bucket.try_take()  # no refill out of a jump: the next token is 100 sandbox seconds away
    with pytest.raises(ValueError):
        clock.rescale(0)
