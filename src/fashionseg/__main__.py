import sys

from fashionseg.cli import main

sys.exit(main())
