import sys

from skeletok.cli import main

sys.exit(main())
