"""Checkpoint test support: an object whose unpickling would run code."""

class RunsCodeWhenUnpickled:
    """An object whose unpickling would create a file (stands in for any code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))
