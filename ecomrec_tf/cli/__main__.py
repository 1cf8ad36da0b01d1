"""`python -m ecomrec_tf.cli`: the `ecomrec-tf` command."""

import sys

from ecomrec_tf.cli import main

sys.exit(main())
