"""`python -m wfctl` runs the same CLI as the `wfctl` console script."""

from wfctl.cli import main

if __name__ == "__main__":
    main()
