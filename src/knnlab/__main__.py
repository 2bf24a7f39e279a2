import sys

from knnlab.cli import main

sys.exit(main())
