"""``python -m generative.xiangqi play --model DIR``: play Chinese chess against the model."""

from .cli import main

if __name__ == "__main__":
    main()
