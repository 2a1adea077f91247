"""``python -m lumenrec`` runs the CLI (same as the ``lumenrec`` command)."""

from lumenrec.cli import main

if __name__ == "__main__":
    main()
