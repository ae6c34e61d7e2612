"""The former name of :mod:`jaxlab.problems.boundaries` (the network problem's stored decision
boundaries), kept for existing imports: ``jaxlab.boundaries`` IS that module, not a copy, so an
attribute set on one (a test's monkeypatch) is seen by both."""

import sys

from jaxlab.problems import boundaries as _module

sys.modules[__name__] = _module
