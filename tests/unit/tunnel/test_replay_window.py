from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.tunnel.replay_window import ReplayWindow


def test_first_counter_any_value_and_zero() -> None:
    window = ReplayWindow(256)
    assert window.check(0)
    window.commit(0)
    assert not window.check(0)
    assert window.check(1)


def test_too_old_and_replay_and_out_of_order() -> None:
    window = ReplayWindow(256)
    for counter in (1000, 998, 1001):
        assert window.check(counter)
        window.commit(counter)
    assert not window.check(998)
    assert window.check(999)
    assert not window.check(1001 - 256)  # exactly one window behind: too old
    assert window.check(1001 - 255)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), max_size=400))
def test_each_counter_accepted_at_most_once(counters: list[int]) -> None:
    window = ReplayWindow(256)
    accepted: set[int] = set()
    highest = -1
    for counter in counters:
        ok = window.check(counter)
        if ok:
            assert counter not in accepted
            window.commit(counter)
            accepted.add(counter)
            highest = max(highest, counter)
        else:
            assert counter in accepted or counter <= highest - 256
