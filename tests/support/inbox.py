import threading


class Inbox:
    """A consumer callback that records what it is given and lets a test wait for it."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, code: str) -> None:
        with self._changed:
            self.codes.append(code)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.codes) >= count, timeout)
            return list(self.codes)
