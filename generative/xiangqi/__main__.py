"""``python -m generative.xiangqi play|uci|ladder``: play, serve UCI, or run the ladder (cli.py)."""

from .cli import main

if __name__ == "__main__":
    main()
