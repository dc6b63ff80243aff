"""``python -m kithooks``: the ``kithooks`` command."""

from kithooks.cli import main

if __name__ == "__main__":
    main()
