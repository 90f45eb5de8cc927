"""``python -m nbjax ARGS``: same as the ``nbjax`` console script."""

from nbjax.cli.main import main

main()
