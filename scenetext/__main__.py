"""``python -m scenetext``: the same command line as ``scenetext``."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="scenetext")
