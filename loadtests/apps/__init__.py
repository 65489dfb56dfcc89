"""The benchmark's applications: the same few answers from every server (loadtests.bench).

Every app answers ``GET /hello`` with ``Hello, world!`` (text/plain) and a POST with the
length of its body, in decimal.  Where the server has the means, ``/static/<name>`` serves
the file of that name from the directory in $BENCH_STATIC_DIR, and the Twisted Web and
hive trees answer ``/deep/1/2/.../10`` after ten levels of ``getChild``.
"""

import os

HELLO = b"Hello, world!"

#: The 1 MiB file of the static1m scenario lives here; set by loadtests.bench.
STATIC_DIR = os.environ.get("BENCH_STATIC_DIR", "")

#: How many levels of getChild the "deep" scenario walks.
DEPTH = 10
