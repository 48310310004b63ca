import sys

from nnref.cli import main

sys.exit(main())
