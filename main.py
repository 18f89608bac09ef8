"""Entry point of the seed CLI: ``python main.py deploy --model_type vision ...``."""

import sys

from hf_towers.cli import main

if __name__ == "__main__":
    sys.exit(main())
